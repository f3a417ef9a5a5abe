//! Fault tests: what must keep holding when things go wrong around the service.
//!
//! Each module is one fault, inflicted on the real service, always on loopback: the binary
//! as a child process where the process, its database file or its sockets are the subject,
//! the server in-process (against the emulator) where only its answers are:
//!
//! - the process is killed (`kill -9`) or stopped (SIGTERM, SIGINT) during a burst of
//!   pushes: every push answered `success` is in the database afterwards;
//! - the disk fills up, or the database file is removed: no push is acknowledged unless
//!   stored, saves are refused, /healthz says why, and writes resume by themselves when
//!   space returns;
//! - another process holds the database's write lock: no push is acknowledged without being
//!   stored, each is answered before WeChat gives up, pages keep answering, and pushes are
//!   stored again once the lock is gone;
//! - bodies announced and never sent: refused from the query alone, or given up on in time;
//! - thousands of idle connections and a slowloris: pages still answer promptly;
//! - oversized headers and bodies: refused with 431 / 413, and the service keeps serving;
//! - client-supplied `X-Forwarded-For` and identity headers from untrusted peers change
//!   nothing: the allowance of new codes is per connecting address.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod batch_kill;
mod connection_flood;
mod disk_full;
mod forwarded_headers;
mod kill;
mod locked_database;
mod lost_database;
mod oversized_input;
mod replica_kill;
mod shutdown;
mod stalled_bodies;
mod support;

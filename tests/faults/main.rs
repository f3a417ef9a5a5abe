//! Fault tests: what must keep holding when things go wrong around the service.
//!
//! Each module is one fault, inflicted on the real service, always on loopback: the binary
//! as a child process where the process, its database file or its sockets are the subject,
//! the server in-process (against the emulator) where only its answers are:
//!
//! - the process is killed (`kill -9`) or stopped (SIGTERM, SIGINT) during a burst of
//!   pushes: every push answered `success` is in the database afterwards;
//! - another process holds the database's write lock: no push is acknowledged without being
//!   stored, pages keep answering, and pushes are stored again once the lock is gone;
//! - thousands of idle connections and a slowloris: pages still answer promptly;
//! - oversized headers and bodies: refused with 431 / 413, and the service keeps serving;
//! - client-supplied `X-Forwarded-For` and identity headers from untrusted peers change
//!   nothing: the allowance of new codes is per connecting address.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod connection_flood;
mod forwarded_headers;
mod kill;
mod locked_database;
mod oversized_input;
mod shutdown;
mod support;

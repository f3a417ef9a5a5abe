//! Fault tests: the real service under a bad day and a hostile network.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod disk_full;
mod lost_database;
mod stalled_bodies;

//! Integration tests: the real server over HTTP, against the WeChat emulator on loopback.

mod bad_input;
mod batches;
mod browser;
mod caching;
mod callback;
mod cli;
mod groups;
mod hardening;
mod helpers;
mod import;
mod outcomes;
mod pages;
mod qrcode;
mod replicas;
mod secrets;
mod stats;
mod status;
mod tokens;
mod upstream_failures;

//! Connections that hold resources without finishing a request: 2,000 idle connections
//! and a slowloris of 200 more, each sending a request's headers one byte every 200 ms.
//! A normal request on a new connection must still be answered promptly.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::helpers::ChildApp;
use crate::support::timed_get;

const IDLE: usize = 2_000;
const SLOW: usize = 200;
const SLOW_TICK: Duration = Duration::from_millis(200);
/// Open files the test needs: its own side of 2,200 connections, the service's side (the
/// child inherits the limit), and room for the rest.
const FILES_NEEDED: u64 = 5_000;
/// How long a page may take with the flood on.
const PAGE_LIMIT: Duration = Duration::from_secs(1);

fn open(address: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|i| {
            let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("connection {i} of {count}: {e}"));
            stream
                .set_write_timeout(Some(Duration::from_secs(1)))
                .expect("write timeout");
            stream
        })
        .collect()
}

/// Feeds each stream one more byte of a request head that never ends, every tick, until
/// `stop` (or at most a minute).
fn slowloris(mut streams: Vec<TcpStream>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        for stream in &streams {
            let _ = stream.set_nodelay(true);
        }
        let mut sent = 0;
        for tick in 0..300 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let byte = head.get(tick).copied().unwrap_or(b'a');
            for stream in &mut streams {
                // The service may close a connection that takes too long: that is allowed.
                if stream.write_all(&[byte]).is_ok() {
                    sent += 1;
                }
            }
            std::thread::sleep(SLOW_TICK);
        }
        sent
    })
}

/// How many of `streams` the service still holds open (no end of stream, no reset).
fn still_open(streams: &[TcpStream]) -> usize {
    streams
        .iter()
        .filter(|stream| {
            stream.set_nonblocking(true).expect("non-blocking");
            let mut byte = [0u8; 1];
            let open =
                matches!(stream.peek(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
            stream.set_nonblocking(false).expect("blocking");
            open
        })
        .count()
}

#[actix_web::test]
async fn pages_answer_within_a_second_beside_2000_idle_connections_and_a_slowloris_of_200() {
    // Arrange
    let files = rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE");
    if files < FILES_NEEDED {
        eprintln!(
            "SKIPPED: the open-file limit is {files}, below the {FILES_NEEDED} this test needs \
             (raise the hard limit: ulimit -Hn)"
        );
        return;
    }
    // Spawned after raising the limit: the service inherits it.
    let mut child = ChildApp::spawn(&[]);
    let address = child.wait_for_address();
    let socket: SocketAddr = address
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an address: {address}"));
    assert!(socket.ip().is_loopback(), "{socket}");
    let pages = [
        format!("{address}/healthz"),
        format!("{address}/qrcode?scene_id=1"),
    ];
    for url in &pages {
        assert_eq!(
            timed_get(url, Duration::from_secs(10)).await.0,
            Some(200),
            "{url}"
        );
    }

    // Act
    let started = Instant::now();
    let idle = open(socket, IDLE);
    let stop = Arc::new(AtomicBool::new(false));
    let slow = slowloris(open(socket, SLOW), stop.clone());
    eprintln!(
        "{IDLE} idle and {SLOW} slow connections opened in {:?}",
        started.elapsed()
    );
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    let mut measured = Vec::new();
    for _ in 0..3 {
        for url in &pages {
            let (status, took) = timed_get(url, Duration::from_secs(5)).await;
            measured.push((url.clone(), status, took));
        }
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
    let idle_still_open = still_open(&idle);
    stop.store(true, Ordering::Relaxed);
    let bytes_sent = slow.join().expect("slowloris thread");
    drop(idle);

    // Assert
    for (url, status, took) in &measured {
        eprintln!("with the flood on: {url} answered {status:?} in {took:?}");
    }
    eprintln!(
        "at the last measurement {idle_still_open} of {IDLE} idle connections were still \
         open; the slowloris sent {bytes_sent} bytes"
    );
    assert!(
        bytes_sent >= SLOW * 5,
        "the slowloris was not under way: {bytes_sent} bytes"
    );
    let late: Vec<_> = measured
        .iter()
        .filter(|(_, status, took)| *status != Some(200) || *took >= PAGE_LIMIT)
        .collect();
    assert!(
        late.is_empty(),
        "not answered 200 within {PAGE_LIMIT:?}: {late:?}"
    );
    let (after, _) = timed_get(&pages[0], Duration::from_secs(5)).await;
    assert_eq!(
        after,
        Some(200),
        "the service still serves once the flood is gone"
    );
    drop(child);
}

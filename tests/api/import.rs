//! `scene-qr import-events`: the binary on JSON lines, into a database read directly, and
//! beside a running server that keeps storing its pushes.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{event_xml, spawn_app, spawn_app_with};

/// 2000-01-01T00:00:00Z.
const DAY0: i64 = 946_684_800;

/// One event as the earlier system recorded it: a push's fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    openid: String,
    at: i64,
    event: &'static str,
    key: String,
}

fn event(openid: &str, at: i64, event: &'static str, key: &str) -> Event {
    Event {
        openid: openid.into(),
        at,
        event,
        key: key.into(),
    }
}

impl Event {
    fn line(&self) -> String {
        serde_json::json!({
            "ToUserName": "gh_45072270791c",
            "FromUserName": self.openid,
            "CreateTime": self.at,
            "Event": self.event,
            "EventKey": self.key,
        })
        .to_string()
    }

    /// The row it becomes, worked out here the plain way: a follow's key names its scene
    /// after `qrscene_`, a scan's key is its scene, an unfollow has none.
    fn row(&self) -> Row {
        let scene = match self.event {
            "subscribe" => self
                .key
                .strip_prefix("qrscene_")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            "SCAN" => Some(self.key.clone()),
            _ => None,
        };
        let new_follower = self.event == "subscribe" && scene.is_some();
        (
            self.openid.clone(),
            self.at,
            self.event.to_string(),
            self.key.clone(),
            scene,
            new_follower,
        )
    }
}

/// openid, created_at, event, event_key, scene, new_follower.
type Row = (String, i64, String, String, Option<String>, bool);

/// Follows from codes and not, scans, unfollows, a re-follow, over three days.
fn history() -> Vec<Event> {
    vec![
        event("alice", DAY0 + 100, "subscribe", "qrscene_poster"),
        event("bob", DAY0 + 200, "subscribe", "qrscene_poster"),
        event("alice", DAY0 + 86_400 + 300, "SCAN", "poster"),
        event("carol", DAY0 + 3 * 86_400 + 400, "SCAN", "42"),
        event("dave", DAY0 + 500, "subscribe", ""),
        event("bob", DAY0 + 2 * 86_400, "unsubscribe", ""),
        event(
            "bob",
            DAY0 + 2 * 86_400 + 60,
            "subscribe",
            "qrscene_qrscene_7",
        ),
    ]
}

fn lines(events: &[Event]) -> String {
    events.iter().map(|e| e.line() + "\n").collect()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `scene-qr import-events ARGS` on `database_url`, with `stdin` as its input.
fn import(database_url: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scene-qr"))
        .env_clear()
        .env("DATABASE_URL", database_url)
        // The test servers' offset, so that they serve the statistics the import counted.
        .env("SCENE_QR_UTC_OFFSET", "+00:00")
        .arg("import-events")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scene-qr import-events");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        // An import that ends early closes its input: a broken pipe is its business.
        let _ = input.write_all(stdin.as_bytes());
    });
    let output = child.wait_with_output().expect("import ends");
    let _ = writer.join();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A database in a directory of its own, and a file of `content` beside it.
fn database_and_file(content: &str) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, content).expect("write the input");
    let file = file.display().to_string();
    (dir, url, file)
}

async fn stored_rows(database_url: &str) -> BTreeSet<Row> {
    let pool = sqlx::SqlitePool::connect(database_url)
        .await
        .expect("open the database");
    let rows = sqlx::query_as::<_, Row>(
        "SELECT openid, created_at, event, event_key, scene, new_follower FROM scan_events",
    )
    .fetch_all(&pool)
    .await
    .expect("read the events");
    pool.close().await;
    rows.into_iter().collect()
}

#[actix_web::test]
async fn every_line_is_stored_as_the_same_push_would_be() {
    let events = history();
    let (_dir, url, file) = database_and_file(&lines(&events));

    let run = import(&url, &[&file], "");

    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "read 7, stored 7, duplicates 0, ignored 0, rejected 0"
    );
    assert_eq!(run.stderr, "");
    let expected: BTreeSet<Row> = events.iter().map(Event::row).collect();
    assert_eq!(stored_rows(&url).await, expected);
}

#[actix_web::test]
async fn the_same_file_imported_twice_is_stored_once() {
    let mut events = history();
    // Also repeated within the file, as a retried push would be.
    events.push(events[2].clone());
    let (_dir, url, file) = database_and_file(&lines(&events));

    let first = import(&url, &[&file], "");
    let second = import(&url, &[&file], "");

    assert_eq!(
        first.stdout.trim(),
        "read 8, stored 7, duplicates 1, ignored 0, rejected 0"
    );
    assert_eq!(
        second.stdout.trim(),
        "read 8, stored 0, duplicates 8, ignored 0, rejected 0"
    );
    assert_eq!((first.code, second.code), (Some(0), Some(0)));
    assert_eq!(stored_rows(&url).await.len(), 7);
}

#[actix_web::test]
async fn of_two_lines_of_the_same_push_the_first_is_the_one_stored() {
    let line = |ticket: &str| {
        format!(
            r#"{{"FromUserName":"zoe","CreateTime":946684900,"Event":"SCAN","EventKey":"9","Ticket":"{ticket}"}}"#
        )
    };
    let input = [line("first"), history()[0].line(), line("second")].join("\n");
    let (_dir, url, file) = database_and_file(&input);

    let run = import(&url, &[&file], "");
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    let tickets: Vec<String> =
        sqlx::query_scalar("SELECT ticket FROM scan_events WHERE openid = 'zoe'")
            .fetch_all(&pool)
            .await
            .expect("read");

    assert_eq!(
        run.stdout.trim(),
        "read 3, stored 2, duplicates 1, ignored 0, rejected 0"
    );
    assert_eq!(tickets, ["first"]);
}

#[actix_web::test]
async fn bad_lines_are_reported_by_number_and_the_good_ones_stored() {
    let good = history();
    let too_long = format!(
        r#"{{"FromUserName":"o1","CreateTime":1,"Event":"unsubscribe","EventKey":"{}"}}"#,
        "k".repeat(70 * 1024)
    );
    let input = [
        good[0].line(),
        "not json".into(),
        r#"{"CreateTime":946684900,"Event":"SCAN","EventKey":"5"}"#.into(),
        good[1].line(),
        r#"{"FromUserName":"erin","CreateTime":"yesterday","Event":"SCAN","EventKey":"5"}"#.into(),
        String::new(),
        r#"{"FromUserName":"erin","CreateTime":946684900,"Event":"CLICK","EventKey":"menu"}"#
            .into(),
        format!(
            r#"{{"FromUserName":"{}","CreateTime":946684900,"Event":"SCAN","EventKey":"5"}}"#,
            "o".repeat(200)
        ),
        too_long,
        good[2].line(),
    ]
    .join("\n");
    let (_dir, url, file) = database_and_file(&input);

    let run = import(&url, &[&file], "");

    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.stdout.trim(),
        "read 9, stored 3, duplicates 0, ignored 1 (event/CLICK 1), rejected 5"
    );
    let reported: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        reported,
        [
            "line 2: not a JSON object of push fields: expected ident (column 2)",
            "line 3: the push has no FromUserName",
            "line 5: CreateTime is not valid: not Unix seconds",
            "line 8: FromUserName is not valid: longer than any openid",
            "line 9: longer than 64 KiB, the largest push the callback reads",
        ]
    );
    let expected: BTreeSet<Row> = good[..3].iter().map(Event::row).collect();
    assert_eq!(stored_rows(&url).await, expected);
}

#[test]
fn a_missing_file_is_a_bad_argument_and_nothing_is_imported() {
    let (dir, url, _) = database_and_file("");
    let missing = dir.path().join("no-such-file.jsonl");

    let run = import(&url, &[&missing.display().to_string()], "");

    assert_eq!(run.code, Some(2));
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("no-such-file.jsonl"), "{}", run.stderr);
    assert!(run.stderr.contains("No such file"), "{}", run.stderr);
    assert!(!dir.path().join("events.db").exists());
}

#[actix_web::test]
async fn standard_input_is_read_with_a_dash_or_no_argument() {
    let events = history();
    let (_dir, url, _) = database_and_file("");

    let dash = import(&url, &["-"], &lines(&events[..4]));
    let none = import(&url, &[], &lines(&events));

    assert_eq!(
        dash.stdout.trim(),
        "read 4, stored 4, duplicates 0, ignored 0, rejected 0"
    );
    assert_eq!(
        none.stdout.trim(),
        "read 7, stored 3, duplicates 4, ignored 0, rejected 0"
    );
    assert_eq!((dash.code, none.code), (Some(0), Some(0)));
    assert_eq!(stored_rows(&url).await.len(), 7);
}

#[actix_web::test]
async fn with_the_server_stopped_the_same_lines_are_stored_the_same_way() {
    let events = history();
    let (_dir, url, file) = database_and_file(&lines(&events));

    let run = import(&url, &["--server-stopped", &file], "");

    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "read 7, stored 7, duplicates 0, ignored 0, rejected 0"
    );
    let expected: BTreeSet<Row> = events.iter().map(Event::row).collect();
    assert_eq!(stored_rows(&url).await, expected);
}

/// Lines in the import beside the running server: several chunks (the first holds 1,000
/// events), so that pushes arrive both during a chunk and between two.
const BESIDE_THE_SERVER: usize = 25_000;

#[actix_web::test]
async fn an_import_beside_the_running_server_leaves_its_pushes_stored_and_shows_in_its_statistics()
{
    // Arrange: one event pushed before the import and imported too.
    let app = spawn_app().await;
    let url = app.settings.database_url.clone();
    let already_pushed = event("alice", DAY0 + 100, "subscribe", "qrscene_poster");
    let pushed = app
        .push(&event_xml(
            "alice",
            DAY0 + 100,
            "subscribe",
            "qrscene_poster",
        ))
        .await;
    assert_eq!(pushed.text(), "success");
    let mut events = vec![already_pushed];
    events.extend((0..BESIDE_THE_SERVER - 1).map(|i| {
        let at = DAY0 + (i as i64 * 97) % (3 * 86_400);
        event(&format!("user{i}"), at, "SCAN", &format!("{}", i % 20))
    }));
    let file = app.db_dir.path().join("history.jsonl");
    std::fs::write(&file, lines(&events)).expect("write the input");

    // Act: pushes go on, one after another, for as long as the import runs.
    let mut import = tokio::process::Command::new(env!("CARGO_BIN_EXE_scene-qr"))
        .env_clear()
        .env("DATABASE_URL", &url)
        .arg("import-events")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scene-qr import-events");
    let mut answers = Vec::new();
    let status = loop {
        if let Some(status) = import.try_wait().expect("the import's status") {
            break status;
        }
        let at = DAY0 + 2 * 86_400 + answers.len() as i64;
        let xml = event_xml(&format!("live{}", answers.len()), at, "SCAN", "live");
        answers.push(app.push(&xml).await);
    };
    let output = import
        .wait_with_output()
        .await
        .expect("the import's output");
    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-01-31")
        .await
        .json();

    // Assert
    let summary = String::from_utf8_lossy(&output.stdout);
    assert_eq!(status.code(), Some(0), "{summary}");
    assert_eq!(
        summary.trim(),
        format!("read {BESIDE_THE_SERVER}, stored 24999, duplicates 1, ignored 0, rejected 0")
    );
    assert!(!answers.is_empty());
    let refused: Vec<_> = answers.iter().filter(|a| a.text() != "success").collect();
    assert!(
        refused.is_empty(),
        "pushes refused during the import: {} of {}: {:?}",
        refused.len(),
        answers.len(),
        refused
            .iter()
            .map(|a| (a.status, a.text()))
            .collect::<Vec<_>>()
    );
    let scans = i64::try_from(events.len() + answers.len()).expect("a small count");
    assert_eq!(stats["totals"]["scans"], scans);
    assert_eq!(stats["totals"]["new_followers"], 1);
}

#[actix_web::test]
async fn with_the_server_stopped_the_statistics_are_those_of_the_same_events_pushed() {
    let events = history();
    let pushed = spawn_app().await;
    for e in &events {
        let xml = event_xml(&e.openid, e.at, e.event, &e.key);
        assert_eq!(pushed.push(&xml).await.text(), "success");
    }
    let (_dir, url, file) = database_and_file(&lines(&events));

    let run = import(&url, &["--server-stopped", &file], "");
    let imported = spawn_app_with(|s| s.database_url = url.clone()).await;

    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for query in ["", "&scene=poster", "&scene=42"] {
        let path = format!("/api/stats?from=2000-01-01&to=2000-01-31{query}");
        assert_eq!(
            imported.get_owned(path.clone()).await.json(),
            pushed.get_owned(path).await.json(),
            "{query}"
        );
    }
}

/// Enough lines that the import is still at work after committing its first chunk (of
/// 250,000 events), even in an optimised build.
const KILLED_AFTER_A_CHUNK: usize = 500_000;

#[actix_web::test]
async fn an_import_killed_with_the_server_stopped_leaves_statistics_that_count_what_it_stored() {
    // Arrange
    let events: Vec<Event> = (0..KILLED_AFTER_A_CHUNK)
        .map(|i| {
            let at = DAY0 + (i as i64 * 7) % (3 * 86_400);
            event(&format!("user{i}"), at, "SCAN", &format!("{}", i % 20))
        })
        .collect();
    let (_dir, url, file) = database_and_file(&lines(&events));
    let mut import = Command::new(env!("CARGO_BIN_EXE_scene-qr"))
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("SCENE_QR_UTC_OFFSET", "+00:00")
        .args(["import-events", "--server-stopped", &file])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run scene-qr import-events");

    // Act: SIGKILL as soon as a chunk is committed, as a power cut or the OOM killer would.
    let read_only = format!("{url}?mode=ro");
    let stored = loop {
        if let Some(status) = import.try_wait().expect("the import's status") {
            panic!("the import ended ({status}) before it could be killed");
        }
        if let Ok(pool) = sqlx::SqlitePool::connect(&read_only).await {
            let rows: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM scan_events")
                .fetch_one(&pool)
                .await;
            pool.close().await;
            if rows.is_ok_and(|rows| rows > 0) {
                import.kill().expect("kill the import");
                import.wait().expect("the killed import's status");
                break stored_rows(&url).await.len();
            }
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let app = spawn_app_with(|s| s.database_url = url.clone()).await;
    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-01-31")
        .await
        .json();

    // Assert: some events stored and not all; every stored one counted, none other.
    assert!(
        stored > 0 && stored < KILLED_AFTER_A_CHUNK,
        "{stored} events stored"
    );
    assert_eq!(stats["totals"]["scans"], stored as i64);
}

//! A full disk: pushes are refused (WeChat retries them) instead of acknowledged and
//! lost, saves are refused, pages keep serving, and when space returns the service takes
//! writes again by itself.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::helpers::ChildApp;
use crate::support::{Pusher, TOKEN, client, get_text, stored_openids};

/// An 8 MiB tmpfs, mounted for the test and unmounted after it: room for the database and
/// the write-ahead log of the hundred pushes after space returns (each push, committed on
/// its own, adds its event, its indexes and the statistics rows it changes to the log, which
/// SQLite empties only at its checkpoint, about 4 MB).
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts it, or says why it cannot (mounting needs root).
    fn mount() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().to_path_buf();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Self { _dir: dir, path })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes a file until the disk is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let chunk = vec![0u8; 16 * 1024];
    // 8 MiB at most: bounded even if the disk were larger than asked.
    for _ in 0..512 {
        if file
            .write_all(&chunk)
            .and_then(|_| file.sync_all())
            .is_err()
        {
            return;
        }
    }
    panic!("the small disk did not fill up");
}

#[actix_web::test]
async fn on_a_full_disk_nothing_unstored_is_acknowledged_and_writes_resume_when_space_returns() {
    let disk = match SmallDisk::mount() {
        Ok(disk) => disk,
        // CI runs as root, where the test must run; elsewhere it cannot.
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: a full disk is made by mounting a tmpfs, which needs root ({why})");
            return;
        }
        Err(why) => panic!("cannot mount the small disk under CI: {why}"),
    };
    let database = format!("sqlite://{}", disk.path.join("events.db").display());
    let mut child = ChildApp::spawn(&[("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", &database)]);
    let address = child.wait_for_address();
    // The embedded emulator's address, from the sandbox's start line, to count its creates.
    let emulator = child
        .seen
        .iter()
        .find_map(|line| {
            let start = line.find("emulator at http://")? + "emulator at ".len();
            line[start..].split_whitespace().next().map(str::to_string)
        })
        .expect("the sandbox names its emulator");
    let pusher = Pusher::new(&address, Duration::from_secs(10), 1);
    let client = client(Duration::from_secs(10), 4);
    let page = format!("{address}/qrcode?scene_id=1");
    assert_eq!(get_text(&client, &page).await.0, Some(200));
    let mut acknowledged = HashSet::new();
    let mut refused = 0;

    // Fill the disk, then push one at a time, as WeChat does, until writes have failed
    // for a while (bounded: 400 pushes).
    let filler = disk.path.join("filler");
    fill(&filler);
    for i in 0..400 {
        let answer = pusher.push(format!("full{i}")).await;
        if answer.acknowledged {
            acknowledged.insert(answer.openid);
        } else {
            assert_eq!(answer.status, Some(503), "a refused push is answered 503");
            refused += 1;
            if refused >= 50 {
                break;
            }
        }
    }
    let health_while_full = get_text(&client, &format!("{address}/healthz")).await;
    let page_while_full = get_text(&client, &page).await.0;
    let new_code_while_full = get_text(&client, &format!("{address}/qrcode?scene_id=2"))
        .await
        .0;
    let label_while_full = client
        .post(format!("{address}/labels"))
        .content_type("application/x-www-form-urlencoded")
        .send_body("scene=door&label=Front+door")
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);

    std::fs::remove_file(&filler).expect("remove the filler");
    let mut after_recovery = Vec::new();
    for i in 0..100 {
        let answer = pusher.push(format!("after{i}")).await;
        if answer.acknowledged {
            acknowledged.insert(answer.openid.clone());
        }
        after_recovery.push(answer);
    }
    let health_after = get_text(&client, &format!("{address}/healthz")).await;
    let new_code_after = get_text(&client, &format!("{address}/qrcode?scene_id=2"))
        .await
        .0;
    let (_, calls) = get_text(&client, &format!("{emulator}/emulator/calls")).await;
    let creates =
        serde_json::from_str::<serde_json::Value>(&calls).expect("calls")["qrcode_create"].clone();
    let log = child.stop();
    let acknowledged_after = after_recovery.iter().filter(|a| a.acknowledged).count();
    eprintln!(
        "full disk: {} pushes acknowledged, {refused} refused before space returned",
        acknowledged.len().saturating_sub(acknowledged_after)
    );

    assert!(
        refused >= 50,
        "the disk never filled up: {refused} pushes refused"
    );
    assert_eq!(health_while_full.0, Some(503), "{}", health_while_full.1);
    assert!(
        health_while_full.1.contains("store failing"),
        "{}",
        health_while_full.1
    );
    assert_eq!(
        page_while_full,
        Some(200),
        "a cached page is served while the disk is full"
    );
    assert_eq!(
        new_code_while_full,
        Some(503),
        "a new code is not shown before the inventory records it"
    );
    assert_eq!(new_code_after, Some(200));
    assert_eq!(
        creates, 2,
        "the code created while the disk was full is recorded after it, not created again"
    );
    assert_eq!(
        label_while_full, 503,
        "a label is not reported saved on a full disk"
    );
    let refused_after: Vec<_> = after_recovery.iter().filter(|a| !a.acknowledged).collect();
    assert!(
        refused_after.is_empty(),
        "pushes refused after space returned: {refused_after:?}"
    );
    assert_eq!(health_after.0, Some(200), "{}", health_after.1);
    assert_eq!(
        log.matches("database writes are failing").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("database writes work again").count(),
        1,
        "{log}"
    );

    // What was acknowledged is what is stored, and the file takes another writer.
    let stored = stored_openids(&database).await;
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    let pool = sqlx::SqlitePool::connect(&database).await.unwrap();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let mut other_writer = pool.acquire().await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; ROLLBACK")
        .execute(&mut *other_writer)
        .await
        .expect("another process can take the write lock");
}

//! Commands besides serving: what `scene-qr stats rebuild` does.

use std::time::{Duration, Instant};

use time::UtcOffset;

use crate::store::{Store, StoreError};

/// Computes every statistics aggregate again from the raw events of the database at
/// `database_url`, in days of `utc_offset`; returns how long it took.
pub async fn rebuild_statistics(
    database_url: &str,
    utc_offset: UtcOffset,
) -> Result<Duration, StoreError> {
    let started = Instant::now();
    let (store, writer) = Store::open(database_url, utc_offset).await?;
    let rebuilt = store.rebuild_statistics().await;
    writer.finish(Duration::from_secs(10)).await;
    store.close().await;
    rebuilt.map(|()| started.elapsed())
}

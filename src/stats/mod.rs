//! Channel statistics as staff read them: which scenes and groups of scenes brought scans
//! and followers over a range of days. [`report`] gathers what a statistics page, its JSON
//! and its CSV show, or what one scene's page shows, from the store's counts; `order` sorts
//! the table and [`paging`] cuts it into pages. Nothing here knows about HTTP: the routes
//! parse the request and lay out the answer.

mod order;
pub mod paging;
pub mod report;

pub use paging::{Page, PastTheEnd};
pub use report::{Report, SceneReport};

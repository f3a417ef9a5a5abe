//! The statistics table a page at a time: [`PAGE_ROWS`] rows each, so that a page stays
//! small whatever the number of scenes.

use std::ops::Range;

use crate::domain::PAGE_ROWS;

/// Which rows of the table a page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// From 1.
    pub number: u32,
    /// Pages in all: at least 1, an empty table being one empty page.
    pub count: u32,
    /// The page's rows, as indexes into the whole table.
    pub rows: Range<usize>,
}

/// A page asked for beyond the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("page {asked} is past the last page, {last}")]
pub struct PastTheEnd {
    pub asked: u32,
    pub last: u32,
}

impl Page {
    /// Page `number` (from 1) of a table of `rows` rows. A page past the end is refused
    /// rather than shown as the last one: a link that shows other rows than it names
    /// would read as if the numbers had changed.
    pub fn of(rows: usize, number: u32) -> Result<Self, PastTheEnd> {
        let count = u32::try_from(rows.div_ceil(PAGE_ROWS).max(1)).unwrap_or(u32::MAX);
        if number == 0 || number > count {
            return Err(PastTheEnd {
                asked: number,
                last: count,
            });
        }
        let first = (number as usize - 1) * PAGE_ROWS;
        Ok(Self {
            number,
            count,
            rows: first..(first + PAGE_ROWS).min(rows),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hundred_and_twenty_rows_are_three_pages_the_last_of_twenty() {
        let first = Page::of(120, 1).unwrap();
        let last = Page::of(120, 3).unwrap();

        assert_eq!((first.count, first.rows), (3, 0..50));
        assert_eq!((last.count, last.rows), (3, 100..120));
    }

    #[test]
    fn an_empty_table_is_one_empty_page() {
        assert_eq!(
            Page::of(0, 1),
            Ok(Page {
                number: 1,
                count: 1,
                rows: 0..0
            })
        );
    }

    #[test]
    fn a_page_past_the_end_is_refused() {
        assert_eq!(Page::of(100, 3), Err(PastTheEnd { asked: 3, last: 2 }));
        assert_eq!(Page::of(101, 3).map(|p| p.rows), Ok(100..101));
    }
}

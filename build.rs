// `sqlx::migrate!` compiles the files of `migrations/sqlite/` and
// `migrations/postgres/` into the binary; a file added there must
// rebuild the crate, which Cargo cannot know without this line.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

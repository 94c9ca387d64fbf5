//! Project automation: `cargo xtask test`, `cargo xtask demo`.

fn main() {}

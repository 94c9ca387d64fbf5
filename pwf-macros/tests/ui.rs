//! Misuses of `#[derive(PluginConfig)]` fail to compile with an error at the tokens.

#[rustversion::attr(not(stable(1.95)), ignore)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

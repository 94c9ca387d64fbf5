//! The code `#[derive(PluginConfig)]` generates compiles when the user's crate shadows the
//! prelude's names, and raises no warning. Compiling is the test.

#![deny(warnings)]
#![allow(dead_code, non_camel_case_types)]

use ::std::time::Duration;

// Each of these shadows a name the generated code must not rely on.
struct Result;
struct Option;
struct Ok;
struct Some;
struct None;
struct Box;
struct String;
struct Vec;
struct Default;
struct From;
struct Into;
struct str;
struct bool;
struct u32;
mod core {}
mod std {}
mod serde_json {}
mod pwf {}

/// A nested configuration.
#[derive(::pwf::PluginConfig)]
#[config(validate = Self::check)]
struct Rule {
    /// Path prefix.
    #[config(non_empty, validate = starts_with_slash)]
    path: ::std::string::String,
    #[config(default = 1, range = 1..=10)]
    weight: ::core::primitive::u8,
}

impl Rule {
    fn check(&self) -> ::core::result::Result<(), ::pwf::config::Invalid> {
        ::core::result::Result::Ok(())
    }
}

fn starts_with_slash(
    path: &::core::primitive::str,
) -> ::core::result::Result<(), &'static ::core::primitive::str> {
    if path.starts_with('/') {
        ::core::result::Result::Ok(())
    } else {
        ::core::result::Result::Err("must start with '/'")
    }
}

#[derive(::pwf::PluginConfig)]
enum Mode {
    Allow,
    Deny,
}

#[derive(::pwf::PluginConfig)]
#[config(rename_all = "snake_case")]
struct Config {
    #[config(default = "httpbin", non_empty)]
    dispatch_cluster: ::std::string::String,
    #[config(default = 10, range = 1..=100)]
    dispatch_count: ::core::primitive::u32,
    #[config(default = "1s")]
    timeout: Duration,
    #[config(default)]
    rules: ::std::vec::Vec<Rule>,
    #[config(default, one_of = ["GET", "POST"])]
    method: ::core::option::Option<::std::string::String>,
    #[config(default = Mode::Allow)]
    mode: Mode,
    #[config(rename = "extra")]
    tags: ::std::collections::HashSet<::std::string::String>,
    #[config(default)]
    nested: Rule2,
}

#[derive(::pwf::PluginConfig)]
struct Rule2 {}

#[derive(::pwf::PluginConfig)]
struct Empty;

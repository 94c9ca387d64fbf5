use std::time::Duration;

use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(unit = "minutes")]
    timeout: Duration,
}

fn main() {}

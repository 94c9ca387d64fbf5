use std::time::Duration;

use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(default = "half a second")]
    timeout: Duration,
}

fn main() {}

use std::time::Duration;

use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(default = 5000)]
    timeout: Duration,
}

fn main() {}

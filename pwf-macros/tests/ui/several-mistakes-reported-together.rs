use pwf::PluginConfig;

#[derive(PluginConfig)]
struct Config {
    #[config(defualt = 10)]
    dispatch_count: u32,
    #[config(rename = "")]
    cluster: String,
    #[config(non_empty = true)]
    path: String,
}

fn main() {}

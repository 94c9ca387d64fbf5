//! Typed, validated plugin configuration.

use std::fmt;

/// A plugin configuration parsed from Envoy's `configuration` bytes.
pub trait PluginConfig: Sized {
    /// Parses and validates the configuration.
    fn parse(bytes: &[u8]) -> Result<Self, ConfigError>;
}

/// A rejected configuration.
#[derive(Debug)]
pub struct ConfigError {
    problems: Vec<String>,
}

impl ConfigError {
    /// Each problem.
    pub fn problems(&self) -> impl Iterator<Item = &String> {
        self.problems.iter()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl PluginConfig for () {
    fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.is_empty() || bytes == b"{}" {
            Ok(())
        } else {
            Err(ConfigError {
                problems: vec!["this plugin takes no configuration".into()],
            })
        }
    }
}

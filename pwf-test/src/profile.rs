//! Where a module's fuel goes (wasm mode): between host calls ([`Profile`]), and function
//! by function ([`FunctionProfile`], with [`HostBuilder::profile_functions`]).
//!
//! [`HostBuilder::profile_functions`]: crate::HostBuilder::profile_functions

use std::collections::HashMap;

/// Where the guest's fuel goes between host calls: each segment runs from one boundary
/// (an export entered, or a host import called) to the next (an import called, or
/// `return`). The fuel of the guest allocations that return an import's data counts in
/// the segment that starts at that import.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    mark: u64,
    label: &'static str,
    /// Fuel between two boundaries, by (from, to).
    pub segments: HashMap<(&'static str, &'static str), u64>,
    /// Host calls, by import.
    pub calls: HashMap<&'static str, u64>,
}

impl Profile {
    /// Starts a segment at `label`, with `fuel` in the tank.
    pub(crate) fn start(&mut self, label: &'static str, fuel: u64) {
        self.mark = fuel;
        self.label = label;
    }

    /// Crosses a boundary at fuel level `fuel`.
    pub(crate) fn cross(&mut self, label: &'static str, fuel: u64) {
        let spent = self.mark.saturating_sub(fuel);
        *self.segments.entry((self.label, label)).or_default() += spent;
        self.mark = fuel;
        self.label = label;
    }

    /// Counts a call of `import` at fuel level `fuel`.
    pub(crate) fn import(&mut self, import: &'static str, fuel: u64) {
        *self.calls.entry(import).or_default() += 1;
        self.cross(import, fuel);
    }
}

/// Where the guest's fuel goes, function by function. The host stops at every function
/// entry and loop header and charges the fuel spent since the last stop to the call stack
/// seen then.
#[derive(Clone, Debug, Default)]
pub struct FunctionProfile {
    last: Option<(u64, Vec<String>)>,
    /// Fuel spent in each function itself.
    pub exclusive: HashMap<String, u64>,
    /// Fuel spent in each function and everything it called.
    pub inclusive: HashMap<String, u64>,
}

impl FunctionProfile {
    /// A stop at fuel level `fuel` with `stack` (innermost first).
    pub(crate) fn stop(&mut self, fuel: u64, stack: Option<Vec<String>>) {
        if let Some((mark, last)) = self.last.take() {
            let spent = mark.saturating_sub(fuel);
            if let Some(leaf) = last.first() {
                *self.exclusive.entry(leaf.clone()).or_default() += spent;
            }
            let mut seen: Vec<&String> = Vec::with_capacity(last.len());
            for name in &last {
                if !seen.contains(&name) {
                    seen.push(name);
                    *self.inclusive.entry(name.clone()).or_default() += spent;
                }
            }
        }
        self.last = stack.map(|stack| (fuel, stack));
    }
}

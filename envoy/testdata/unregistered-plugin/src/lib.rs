//! A complete plugin whose crate forgets the registration line,
//! `pwf::main!(Forgotten);`. It compiles; Envoy must refuse it at load with a
//! message that names the fix.

use std::rc::Rc;

use pwf::{Action, Error, Http, HttpFilter, Plugin, PluginContext};

/// Adds `x-forgotten: yes` to every response, if it were ever registered.
pub struct Forgotten;

impl Plugin for Forgotten {
    type Config = ();
    type Filter = ForgottenFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Forgotten)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> ForgottenFilter {
        ForgottenFilter
    }
}

/// The filter of [`Forgotten`].
pub struct ForgottenFilter;

impl HttpFilter for ForgottenFilter {
    fn on_response_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        http.set_response_header("x-forgotten", "yes")?;
        Ok(Action::Continue)
    }
}

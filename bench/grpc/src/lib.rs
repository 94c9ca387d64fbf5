//! The plugin `pwf-bench` builds to measure what gRPC costs a plugin's `.wasm`
//! (docs/performance.md, "gRPC"). Without features it checks each request with an HTTP
//! call to `auth` and answers 403 when the call does not answer 200. Each feature adds
//! one gRPC step to the same check, so that the sizes differ by what gRPC costs:
//!
//! - `call`: a unary call to `policy` as well, its message as bytes;
//! - `prost`: that call's messages as `prost` types (pwf's `prost` feature);
//! - `streams-feature`: pwf's `grpc-streams` feature on, with no stream opened;
//! - `stream`: a gRPC stream to `policy` as well, its answers read to the end.
//!
//! Build: `cargo build --target wasm32-wasip1 --release -p grpc_size [--features ...]`;
//! `cargo run -p pwf-bench -- --grpc-size` builds every variant and prints their sizes.

#![forbid(unsafe_code)]

use std::rc::Rc;

use pwf::{Action, Error, Http, HttpFilter, LocalResponse, Outcome, Plugin, PluginContext};

/// The plugin.
pub struct Check;

impl Plugin for Check {
    type Config = ();
    type Filter = CheckFilter;

    fn configure(_: (), _: &PluginContext) -> Result<Self, Error> {
        Ok(Check)
    }

    fn filter(_: &Rc<Self>, _: &Http) -> CheckFilter {
        CheckFilter
    }
}

/// The filter of one stream.
pub struct CheckFilter;

/// The policy service's request and answer, as `prost` types.
#[cfg(feature = "prost")]
mod messages {
    /// What is asked.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct CheckRequest {
        /// The user.
        #[prost(string, tag = "1")]
        pub(crate) user: String,
    }

    /// What the service answers.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct CheckResponse {
        /// Whether the user may go on.
        #[prost(bool, tag = "1")]
        pub(crate) allowed: bool,
    }
}

impl HttpFilter for CheckFilter {
    fn on_request_headers(&mut self, http: &Http, _: bool) -> Result<Action, Error> {
        let user = http
            .request_header("x-user")?
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let auth = pwf::Request::get("auth", "/check")
            .header("x-user", user.clone())
            .send()?;
        #[cfg(feature = "call")]
        let policy = {
            let request = pwf::GrpcRequest::new("policy", "acme.Policy", "Check");
            #[cfg(feature = "prost")]
            let request = request.encode(&messages::CheckRequest { user: user.clone() });
            #[cfg(not(feature = "prost"))]
            let request = request.message(user.clone().into_bytes());
            request.send()?
        };
        #[cfg(feature = "stream")]
        let mut stream = pwf::GrpcRequest::new("policy", "acme.Policy", "Watch")
            .message(user.into_bytes())
            .open_stream()?;
        Ok(http.spawn(async move {
            // The gRPC steps below narrow it down; without them it stays as it is.
            #[cfg_attr(not(feature = "call"), allow(unused_mut))]
            let mut allowed = auth.await?.status() == 200;
            #[cfg(feature = "call")]
            {
                let answer = policy.await?;
                #[cfg(feature = "prost")]
                {
                    allowed &= answer.decode::<messages::CheckResponse>()?.allowed;
                }
                #[cfg(not(feature = "prost"))]
                {
                    allowed &= answer.message() == b"\x08\x01";
                }
            }
            #[cfg(feature = "stream")]
            {
                use futures::StreamExt;
                stream.close_send()?;
                while let Some(message) = stream.next().await {
                    allowed &= message?.is_empty();
                }
            }
            Ok(if allowed {
                Outcome::Continue
            } else {
                Outcome::Respond(LocalResponse::new(403))
            })
        }))
    }
}

pwf::main!(Check);

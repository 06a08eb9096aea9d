//! The standard features, one module each.
//!
//! | feature | level | provided by |
//! |---|---|---|
//! | [`RequestFeature`] | request, **required** | every server |
//! | [`ResponseFeature`] | request, **required** | every server |
//! | [`ResponseBody`] | request, **required** (behaviour, `dyn ResponseBody`) | every server |
//! | [`ConnectionInfo`] | connection (defaults layer) | servers with a connection; TestServer (settable) |
//! | [`RequestLifetime`] | request | servers that notice a client going away |
//! | [`RequestId`] | request | every server in this workspace |
//! | [`MaxRequestBodySize`] | request | servers that enforce a body limit |
//! | [`Upgrade`] | request (behaviour, `dyn Upgrade`) | HTTP/1.1 servers that can hand over the connection |
//! | [`TlsInfo`] | connection (defaults layer) | servers terminating TLS; TestServer (settable) |
//! | [`RequestTrailers`] | request | servers that read request trailers |
//! | [`ResponseTrailers`] | request | servers that can send trailers (chunked HTTP/1.1, HTTP/2) |
//! | [`ConnectionClose`] | request | servers with persistent connections |
//! | [`MinRequestBodyDataRate`], [`MinResponseDataRate`] | request | the built-in server |
//! | [`ServerAddresses`] | server ([`Server::features`](crate::Server::features)) | every listening server |
//!
//! Apps must feature-test everything but the three required features: a
//! missing feature means "not supported by this server", never an error.

mod body_size;
mod connection;
mod connection_close;
mod data_rate;
mod lifetime;
mod request;
mod request_id;
mod response;
pub(crate) use response::reason_fits;
mod response_body;
pub(crate) use response_body::FilePieces;
mod server_addresses;
mod tls;
mod trailers;
mod upgrade;

pub use body_size::MaxRequestBodySize;
pub use connection::{Address, ConnectionInfo};
pub use connection_close::ConnectionClose;
pub use data_rate::{MinDataRate, MinRequestBodyDataRate, MinResponseDataRate};
pub use lifetime::{Cancelled, RequestLifetime};
pub use request::RequestFeature;
pub use request_id::RequestId;
pub use response::{Callback, ResponseFeature};
pub use response_body::{FileRange, ResponseBody, ResponseHead};
#[cfg(feature = "host")]
pub(crate) use server_addresses::URL_FORMS;
pub use server_addresses::{ServerAddress, ServerAddresses};
pub use tls::TlsInfo;
pub use trailers::{RequestTrailers, ResponseTrailers};
pub use upgrade::{OnUpgrade, Upgrade, Upgraded, UpgradedIo};

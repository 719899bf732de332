//! The HTTP API JWT authorizer (`CognitoJwt`) in front of `/api/*`, and the WebSocket API's
//! token check: the ONE verifier `prechat::realtime::jwt` (which `ws-authorizer` runs on AWS),
//! here trusting the local pool in moto (issuer of the pool, its JWKS at moto's URL).

pub use prechat::realtime::jwt::*;

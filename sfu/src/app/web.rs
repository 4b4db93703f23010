//! Serves `web/` (the demo room, the SDK and the embed) from the binary.
//!
//! Release builds carry the files inside the executable; debug builds read
//! them from the source tree, so page edits show without a rebuild.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../web/"]
#[include = "demo/**"]
#[include = "sdk/**"]
#[include = "embed/**"]
#[exclude = "**/*.test.*"]
struct Assets;

/// Who may put our pages in a frame.
#[derive(Clone)]
pub struct FramePolicy {
    /// The `Content-Security-Policy` value for HTML pages.
    csp: HeaderValue,
}

impl FramePolicy {
    /// `ancestors` empty: anyone in development mode, only ourselves otherwise.
    pub fn new(ancestors: &[String], development: bool) -> Self {
        let list = if !ancestors.is_empty() {
            format!("'self' {}", ancestors.join(" "))
        } else if development {
            "*".to_owned()
        } else {
            "'self'".to_owned()
        };
        let csp = HeaderValue::from_str(&format!("frame-ancestors {list}"))
            .unwrap_or_else(|_| HeaderValue::from_static("frame-ancestors 'self'"));
        FramePolicy { csp }
    }
}

/// Static routes: `/` is the demo room, `/embed.js` the embed snippet,
/// everything else a file under `web/`.
pub fn router(policy: FramePolicy) -> Router {
    Router::new().fallback(serve).with_state(policy)
}

async fn serve(State(policy): State<FramePolicy>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    let path = match path {
        "" => "demo/index.html",
        "embed.js" => "embed/embed.js",
        p if p.ends_with('/') => return redirect_index(p),
        p => p,
    };
    let Some(file) = Assets::get(path).or_else(|| {
        // `/demo` and friends: the folder's index page.
        Assets::get(&format!("{path}/index.html"))
    }) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let is_html = mime.essence_str() == "text/html" || !path.contains('.');
    let mut resp = Response::new(Body::from(file.data.into_owned()));
    let headers = resp.headers_mut();
    let ct = if is_html {
        "text/html; charset=utf-8".to_string()
    } else {
        mime.to_string()
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if is_html {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy.csp.clone());
    }
    resp
}

fn redirect_index(p: &str) -> Response {
    let to = format!("/{p}index.html");
    match HeaderValue::from_str(&to) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

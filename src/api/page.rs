//! `GET /`: the read-only status page, one self-contained HTML file (inline CSS and JS, no
//! external assets) compiled into the binary. It reads `/v1/events` (falling back to polling
//! `/v1/broadcasts`) and plays previews from `/v1/broadcasts/{name}/preview.mp4`; it renders
//! status text with `textContent` only, never as HTML.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::ApiState;

const PAGE: &str = include_str!("../../assets/web/status.html");
/// Where the page learns whether previews are on (`data-preview` on `<body>`).
const PREVIEW_MARK: &str = "data-preview=\"on\"";

pub(super) async fn page(State(ApiState { preview, .. }): State<ApiState>) -> Response {
    let body = if preview.is_enabled() {
        PAGE.to_string()
    } else {
        PAGE.replacen(PREVIEW_MARK, "data-preview=\"off\"", 1)
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // The page needs nothing from elsewhere; say so to the browser.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                     connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; \
                     base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_self_contained_and_never_puts_status_text_into_html() {
        assert!(PAGE.contains(PREVIEW_MARK));
        for external in ["src=\"http", "href=\"http", "//cdn", "@import"] {
            assert!(!PAGE.contains(external), "{external}");
        }
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!PAGE.contains(sink), "{sink}");
        }
    }
}

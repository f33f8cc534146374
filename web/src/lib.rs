//! Tape's face, served by `tape run` and `tape gateway` with every asset inside the
//! binary (it works air-gapped):
//!
//! * `/` — the trading page;
//! * `/operator` — the operator console;
//! * `/auditor` — the auditor page;
//! * `/graphql` (GET) — GraphiQL;
//! * `/assets/…` — the pages' scripts and styles and the vendored libraries
//!   (`assets/vendor/`, each with its licence; `scripts/vendor-web.sh` fetches them).
//!
//! The pages are ES modules with no build step. They speak only the public GraphQL
//! API (and read `/metrics` for the console's health panel).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Assets;

/// The pages and their assets; merged into the gateway's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| page("trade.html")))
        .route("/operator", get(|| page("operator.html")))
        .route("/auditor", get(|| page("auditor.html")))
        .route("/assets/{*path}", get(asset))
}

/// GraphiQL, from the bundled copy (the gateway routes `GET /graphql` here).
pub async fn graphiql() -> Response {
    page("graphiql.html").await
}

async fn page(name: &str) -> Response {
    serve(name, "no-cache")
}

async fn asset(Path(path): Path<String>) -> Response {
    // The libraries are pinned and never change under a name; the pages' own
    // scripts change with the binary, so they are revalidated.
    let cache = if path.starts_with("vendor/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    serve(&path, cache)
}

fn serve(path: &str, cache: &'static str) -> Response {
    // RFC 9239: JavaScript is text/javascript (mime_guess says application/…).
    let kind = |file: &rust_embed::EmbeddedFile| match path.rsplit('.').next() {
        Some("js" | "mjs") => "text/javascript; charset=utf-8".to_string(),
        _ => file.metadata.mimetype().to_string(),
    };
    match Assets::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, kind(&file)),
                (header::CACHE_CONTROL, cache.to_string()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            ],
            file.data,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no asset {path}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, String, String) {
        let r = router::<()>()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let kind = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, kind, String::from_utf8_lossy(&body).to_string())
    }

    #[tokio::test]
    async fn every_page_and_every_asset_it_names_is_in_the_binary() {
        for page in ["/", "/operator", "/auditor"] {
            let (status, kind, html) = get(page).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(kind.starts_with("text/html"), "{page}: {kind}");
            // Every script and stylesheet a page names is served from here, not a CDN.
            for link in html
                .split(['"', '\''])
                .filter(|s| s.starts_with("/assets/"))
            {
                let (status, _, _) = get(link).await;
                assert_eq!(status, StatusCode::OK, "{page} names {link}");
            }
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{page}"
            );
        }
        let (status, kind, _) =
            get("/assets/vendor/lightweight-charts/lightweight-charts.standalone.production.mjs")
                .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind, "text/javascript; charset=utf-8");
    }

    #[tokio::test]
    async fn what_is_not_an_asset_is_not_found() {
        assert_eq!(get("/assets/nothing.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get("/assets/../Cargo.toml").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get("/nothing").await.0, StatusCode::NOT_FOUND);
    }
}

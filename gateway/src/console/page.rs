//! The frame of every page: head, header with who is signed in, the views this identity
//! may open, the entity search and the status line `console.js` writes to.

use maud::{html, Markup, DOCTYPE};

use super::session::Viewer;
use crate::unified::MentionRef;

/// A page of the console for a signed-in viewer.
pub fn layout(viewer: &Viewer, title: &str, view: &str, main: Markup) -> Markup {
    let steward = viewer.is_steward();
    frame(
        title,
        view,
        html! {
            header {
                a.brand href="/" { "Tongban console" }
                nav {
                    @if steward {
                        a #nav-review href="/review" { "Review queue" }
                    } @else {
                        a #nav-operations href="/operations" { "Operations" }
                    }
                    a #nav-quality href="/quality" { "Data quality" }
                }
                @if steward {
                    form #find method="get" action="/entities" {
                        input type="search" name="id" placeholder="P… or O…" aria-label="Unified ID" pattern="[PO][0-9]{11}";
                        button type="submit" { "Open" }
                    }
                }
                span #whoami { (viewer.identity.to_string()) }
                // Ends a sign-in link's session; with a certificate there is none to end.
                form.signout method="post" action="/logout" { button type="submit" { "Sign out" } }
            }
            p #status role="status" aria-live="polite" {}
            (main)
        },
    )
}

/// A mention by its record's address (`civil.marriage J370000-1978-000005 party#0`):
/// what the console shows of a source, never a personal value.
pub fn mention(m: &MentionRef) -> String {
    format!("{} {} {}#{}", m.record_type, m.source_id, m.role, m.index)
}

/// A page without navigation: sign-in problems and refusals before anyone is known.
pub fn bare(title: &str, view: &str, main: Markup) -> Markup {
    frame(
        title,
        view,
        html! {
            header { a.brand href="/" { "Tongban console" } }
            (main)
        },
    )
}

fn frame(title: &str, view: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tongban" }
                link rel="stylesheet" href=(super::STYLESHEET);
                script src=(super::SCRIPT) defer {}
            }
            body data-view=(view) { (body) }
        }
    }
}

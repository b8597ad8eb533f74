//! The HTML document and the route table.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::components::layout::Layout;
use crate::pages::admin::{AdminAuditPage, AdminTeamPage, AdminTeamsPage, AdminUsersPage};
use crate::pages::admin_usage::AdminUsagePage;
use crate::pages::cluster::ClusterPage;
use crate::pages::keys::{AdminKeysPage, TeamKeysPage};
use crate::pages::modelfile::ModelfilePage;
use crate::pages::modelfiles::ModelfilesPage;
use crate::pages::operations::{OperationPage, OperationsPage};
use crate::pages::teams::{TeamPage, TeamsPage};
use crate::pages::usage::TeamUsagePage;
use crate::pages::{
    home::HomePage, not_found::NotFoundPage, signin::SignInPage, status::StatusPage,
};

/// The whole HTML document, rendered on the server for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full bg-slate-50">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class="h-full text-slate-900 antialiased">
                <App/>
            </body>
        </html>
    }
}

/// The application: layout plus one route per page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/corral.css"/>
        <Title formatter=|text: String| {
            if text.is_empty() { "Corral".to_string() } else { format!("{text} · Corral") }
        }/>
        <Router>
            <Layout>
                <Routes fallback=NotFoundPage>
                    <Route path=StaticSegment("") view=HomePage/>
                    <Route path=StaticSegment("status") view=StatusPage/>
                    <Route path=StaticSegment("signin") view=SignInPage/>
                    <Route path=StaticSegment("teams") view=TeamsPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("teams"), ParamSegment("slug")) view=TeamPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("teams"), ParamSegment("slug"), StaticSegment("keys")) view=TeamKeysPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("teams"), ParamSegment("slug"), StaticSegment("usage")) view=TeamUsagePage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("modelfiles") view=ModelfilesPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("modelfiles"), ParamSegment("id")) view=ModelfilePage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("cluster") view=ClusterPage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("operations") view=OperationsPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("operations"), ParamSegment("id")) view=OperationPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("admin"), StaticSegment("keys")) view=AdminKeysPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("admin"), StaticSegment("teams")) view=AdminTeamsPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("admin"), StaticSegment("teams"), ParamSegment("slug")) view=AdminTeamPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("admin"), StaticSegment("users")) view=AdminUsersPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("admin"), StaticSegment("audit")) view=AdminAuditPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("admin"), StaticSegment("usage")) view=AdminUsagePage ssr=SsrMode::Async/>
                </Routes>
            </Layout>
        </Router>
    }
}

//! Two people on two nodes of one cluster (one PostgreSQL database, one Redis), each
//! browser talking to its own node.

use confab_server::{config::Config, Server};
use sqlx::{Connection, Executor, PgConnection};

use crate::{
    flows::{create_room, expect_text, say, signed_in},
    harness::{site_dir, Chromedriver, SCREEN_WAIT},
};

/// A database of its own on the test PostgreSQL, dropped with it.
struct Database {
    admin: String,
    name: String,
}

impl Database {
    async fn create() -> Self {
        let admin = std::env::var("CONFAB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("confab_browser_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL runs");
        connection
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap();
        Self { admin, name }
    }

    fn url(&self) -> String {
        let base = self.admin.rsplit_once('/').map_or("", |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    async fn drop(self) {
        let mut connection = PgConnection::connect(&self.admin).await.unwrap();
        let drop = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        connection.execute(drop.as_str()).await.unwrap();
    }
}

#[tokio::test]
async fn two_people_on_two_nodes_chat_and_see_each_other_online() {
    let database = Database::create().await;
    let redis =
        std::env::var("CONFAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("browser:{}:", uuid::Uuid::new_v4().simple());
    let mut nodes = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(data.path());
        config.site_dir = site_dir();
        config.database_url = Some(database.url());
        config.redis_url = Some(redis.clone());
        config.redis_prefix = prefix.clone();
        nodes.push(Server::start(config).await.expect("node starts"));
        dirs.push(data);
    }
    let driver = Chromedriver::start().await;
    let ana = signed_in(&driver, &format!("http://{}/", nodes[0].addr()), "Ana").await;
    let link = create_room(&ana).await;
    let (_, room) = link.split_once('#').expect("a link to the room");
    let on_node_two = format!("http://{}/#{room}", nodes[1].addr());
    let ben = signed_in(&driver, &on_node_two, "Ben").await;

    expect_text(&ana, "[data-testid=members]", "Ben").await;
    expect_text(&ben, "[data-testid=members]", "Ana").await;
    say(&ana, "Hello from node one").await;
    expect_text(&ben, "[data-testid=messages]", "Hello from node one").await;
    say(&ben, "Hi from node two").await;
    expect_text(&ana, "[data-testid=messages]", "Hi from node two").await;
    ana.screenshot("two-nodes-chat").await;

    // Each sees the other online, and Ben's sign-out on node two reaches Ana on node one.
    expect_text(&ana, "[data-testid=online-users]", "Ben").await;
    expect_text(&ben, "[data-testid=online-users]", "Ana").await;
    ben.click("[data-testid=sign-out]").await;
    ana.wait_until("[data-testid=online-users]", SCREEN_WAIT, |t| {
        !t.contains("Ben")
    })
    .await
    .unwrap_or_else(|err| panic!("Ben goes offline on node one: {err}"));
    for browser in [ana, ben] {
        browser.close().await;
    }
    for node in nodes {
        node.shutdown().await.unwrap();
    }
    database.drop().await;
}

//! One storage suite, run against SQLite (reads on the writer's connection, and on readers
//! of their own) and PostgreSQL.

use std::sync::Arc;

use crate::common::db::{drop_database, fresh_database_url, Backend};
use confab_server::{
    core::model::{
        AddMember, Level, Member, MessageKind, NewMessage, NewRoom, Notification, Party,
        PartyPhase, PartyPlayer, Phase, Profile,
    },
    store::{self, Store, StoreOptions},
};

struct TestStore {
    store: Arc<dyn Store>,
    url: String,
    backend: Backend,
    _dir: tempfile::TempDir,
}

impl TestStore {
    async fn new(backend: Backend) -> Self {
        Self::with_options(backend, StoreOptions::default()).await
    }

    async fn with_options(backend: Backend, options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database_url(backend, dir.path()).await;
        let store = store::open_with(&url, options).await.expect("store opens");
        Self {
            store,
            url,
            backend,
            _dir: dir,
        }
    }

    async fn reopen(&self) -> Arc<dyn Store> {
        store::open(&self.url).await.expect("store reopens")
    }

    async fn finish(self) {
        drop(self.store);
        drop_database(self.backend, &self.url).await;
    }
}

fn profile(user_id: &str) -> Profile {
    Profile {
        user_id: user_id.into(),
        username: format!("name-{user_id}"),
        image_url: format!("https://img.example/{user_id}.png"),
        email: format!("{user_id}@example.com"),
    }
}

fn new_room(key: &str, max_users: u32) -> NewRoom {
    NewRoom {
        key: key.into(),
        name: String::new(),
        room_type: "trivia".into(),
        max_users,
        host_id: "host".into(),
        created_at_ms: 1_700_000_000_000,
    }
}

fn new_message(room_key: &str, body: &str) -> NewMessage {
    NewMessage {
        id: uuid::Uuid::new_v4().to_string(),
        room_key: room_key.into(),
        sender: profile("u1"),
        body: body.into(),
        kind: MessageKind::Text,
        created_at_ms: 1_700_000_000_500,
    }
}

/// Creates room `key` with `u1`, the sender of [`new_message`], as its member.
async fn room_for_messages(t: &TestStore, key: &str) {
    t.store.create_room(&new_room(key, 4)).await.unwrap();
    t.store.add_member(key, "u1", 1).await.unwrap();
}

async fn profiles_are_upserted(t: &TestStore) {
    let s = &t.store;
    assert_eq!(s.profile("u1").await.unwrap(), None);
    s.upsert_profile(&profile("u1"), 1).await.unwrap();
    assert_eq!(s.profile("u1").await.unwrap(), Some(profile("u1")));
    let renamed = Profile {
        username: "Ana".into(),
        ..profile("u1")
    };
    s.upsert_profile(&renamed, 2).await.unwrap();
    assert_eq!(s.profile("u1").await.unwrap(), Some(renamed));
}

async fn a_sign_in_reads_the_ban_the_profile_and_the_rooms_at_once(t: &TestStore) {
    use confab_server::core::model::{Account, Ban};
    let s = &t.store;
    let newcomer = Account {
        banned: false,
        profile: None,
        rooms: Some(Vec::new()),
    };
    assert_eq!(s.account("u1", true).await.unwrap(), newcomer);
    s.upsert_profile(&profile("u1"), 1).await.unwrap();
    for key in ["ACCT22", "ACCU22"] {
        s.create_room(&new_room(key, 4)).await.unwrap();
    }
    s.add_member("ACCU22", "u1", 10).await.unwrap();
    s.add_member("ACCT22", "u1", 20).await.unwrap();
    s.add_member("ACCU22", "u2", 30).await.unwrap();
    let known = Account {
        banned: false,
        profile: Some(profile("u1")),
        rooms: Some(vec!["ACCT22".into(), "ACCU22".into()]),
    };
    assert_eq!(s.account("u1", true).await.unwrap(), known);
    // Without the rooms, none are read.
    let without_rooms = s.account("u1", false).await.unwrap();
    assert_eq!(without_rooms.rooms, None);
    assert_eq!(without_rooms.profile, Some(profile("u1")));
    let ban = Ban {
        user_id: "u1".into(),
        reason: "spam".into(),
        moderator: "mo".into(),
        banned_at_ms: 100,
    };
    s.ban(&ban).await.unwrap();
    assert!(s.account("u1", false).await.unwrap().banned);
    // A ban needs no profile, and bans no one else.
    s.ban(&Ban {
        user_id: "stranger".into(),
        ..ban
    })
    .await
    .unwrap();
    let stranger = s.account("stranger", true).await.unwrap();
    assert!(stranger.banned);
    assert_eq!(stranger.profile, None);
    assert!(!s.account("u2", false).await.unwrap().banned);
}

async fn rooms_are_created_once_and_read_back(t: &TestStore) {
    let s = &t.store;
    assert!(s.create_room(&new_room("ABC234", 4)).await.unwrap());
    assert!(
        !s.create_room(&new_room("ABC234", 9)).await.unwrap(),
        "a second create with the same key fails"
    );
    let room = s.room("ABC234").await.unwrap().unwrap();
    assert_eq!(
        (room.key.as_str(), room.max_users, room.phase, room.last_seq),
        ("ABC234", 4, Phase::Lobby, 0)
    );
    assert_eq!(room.game_state, None);
    assert_eq!(s.room("NOPE22").await.unwrap(), None);

    let started = s
        .start_game("ABC234", r#"{"round":1}"#)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(started.phase, Phase::Playing);
    assert_eq!(started.game_state.as_deref(), Some(r#"{"round":1}"#));
    assert_eq!(
        s.start_game("ABC234", r#"{"round":2}"#).await.unwrap(),
        None,
        "a playing room does not start again"
    );
    assert_eq!(
        s.room("ABC234")
            .await
            .unwrap()
            .unwrap()
            .game_state
            .as_deref(),
        Some(r#"{"round":1}"#)
    );
    assert_eq!(s.start_game("NOPE22", "{}").await.unwrap(), None);
}

async fn membership_respects_capacity(t: &TestStore) {
    let s = &t.store;
    s.create_room(&new_room("ROOM22", 2)).await.unwrap();
    assert_eq!(
        s.add_member("ROOM22", "a", 1).await.unwrap(),
        AddMember::Added
    );
    assert_eq!(
        s.add_member("ROOM22", "a", 2).await.unwrap(),
        AddMember::AlreadyMember
    );
    assert_eq!(
        s.add_member("ROOM22", "b", 3).await.unwrap(),
        AddMember::Added
    );
    assert_eq!(
        s.add_member("ROOM22", "c", 4).await.unwrap(),
        AddMember::Full
    );
    assert_eq!(
        s.add_member("NOPE22", "a", 5).await.unwrap(),
        AddMember::NotFound
    );
    assert!(s.is_member("ROOM22", "b").await.unwrap());
    assert!(!s.is_member("ROOM22", "c").await.unwrap());

    let members: Vec<_> = s
        .members("ROOM22")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.profile.user_id)
        .collect();
    assert_eq!(members, ["a", "b"]);
    assert!(s.remove_member("ROOM22", "a").await.unwrap());
    assert!(!s.remove_member("ROOM22", "a").await.unwrap());
    assert_eq!(s.room("ROOM22").await.unwrap().unwrap().member_count, 1);
    assert_eq!(
        s.add_member("ROOM22", "c", 6).await.unwrap(),
        AddMember::Added,
        "a freed seat can be taken"
    );
}

async fn racing_joins_never_overfill_a_room(t: &TestStore) {
    t.store.create_room(&new_room("RACE22", 5)).await.unwrap();
    let joins = (0..25).map(|i| {
        let store = Arc::clone(&t.store);
        tokio::spawn(async move {
            store
                .add_member("RACE22", &format!("user{i}"), i)
                .await
                .unwrap()
        })
    });
    let outcomes = futures_util::future::join_all(joins).await;
    let added = outcomes
        .iter()
        .filter(|o| *o.as_ref().unwrap() == AddMember::Added)
        .count();
    assert_eq!(added, 5);
    assert_eq!(t.store.members("RACE22").await.unwrap().len(), 5);
    assert_eq!(
        t.store.room("RACE22").await.unwrap().unwrap().member_count,
        5
    );
}

/// One user joining the same room many times at once is seated once, and counted once;
/// leaving many times at once frees that one seat once.
async fn one_users_racing_joins_take_one_seat(t: &TestStore) {
    t.store.create_room(&new_room("TWIN22", 5)).await.unwrap();
    let joins = (0..10).map(|i| {
        let store = Arc::clone(&t.store);
        tokio::spawn(async move { store.add_member("TWIN22", "twin", i).await.unwrap() })
    });
    let mut outcomes: Vec<AddMember> = futures_util::future::join_all(joins)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    outcomes.sort_by_key(|o| *o != AddMember::Added);
    assert_eq!(outcomes[0], AddMember::Added);
    assert!(
        outcomes[1..].iter().all(|o| *o == AddMember::AlreadyMember),
        "{outcomes:?}"
    );
    let room = t.store.room("TWIN22").await.unwrap().unwrap();
    assert_eq!(room.member_count, 1);

    let leaves = (0..10).map(|_| {
        let store = Arc::clone(&t.store);
        tokio::spawn(async move { store.remove_member("TWIN22", "twin").await.unwrap() })
    });
    let removed = futures_util::future::join_all(leaves)
        .await
        .into_iter()
        .filter(|removed| *removed.as_ref().unwrap())
        .count();
    assert_eq!(removed, 1);
    let room = t.store.room("TWIN22").await.unwrap().unwrap();
    assert_eq!(room.member_count, 0);
}

/// Another connection holding a row of `table` (on SQLite, the database) for writing.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn hold(t: &TestStore, table: &str, id: &str) -> Self {
        use sqlx::{Connection, Executor};
        match t.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                Self::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
                let lock = format!("BEGIN; SELECT 1 FROM {table} WHERE id = '{id}' FOR UPDATE");
                conn.execute(lock.as_str()).await.unwrap();
                Self::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        use sqlx::Executor;
        match self {
            Self::Sqlite(mut conn) => {
                conn.execute("COMMIT").await.unwrap();
            }
            Self::Postgres(mut conn) => {
                conn.execute("COMMIT").await.unwrap();
            }
        }
    }
}

/// A join whose caller goes away while it waits inside its transaction (a request whose
/// client left) leaves no transaction open: the store writes on. A party's seat is taken
/// in the caller's own transaction, so nothing of the abandoned join is kept; a room's, on
/// SQLite, by the join writer, which makes it whoever waits, so it is kept whole or not at
/// all.
async fn a_join_abandoned_part_way_leaves_no_transaction_open(t: &TestStore) {
    let s = &t.store;
    assert!(s
        .create_party(&party("gone-party", "GONEP2", 10), &player("ana", 1))
        .await
        .unwrap());
    s.create_room(&new_room("GONE22", 10)).await.unwrap();
    let wait_and_abandon = |join: tokio::task::JoinHandle<_>| async move {
        // Long enough for the join to be waiting on the lock, well within the store's wait.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        join.abort();
        assert!(
            join.await.unwrap_err().is_cancelled(),
            "the join was waiting"
        );
    };

    let lock = WriteLock::hold(t, "party_sessions", "gone-party").await;
    let store = Arc::clone(s);
    wait_and_abandon(tokio::spawn(async move {
        store
            .add_party_player("gone-party", &player("gone", 2))
            .await
    }))
    .await;
    lock.release().await;
    assert_eq!(
        s.add_party_player("gone-party", &player("next", 3))
            .await
            .unwrap(),
        AddMember::Added
    );
    let players: Vec<String> = s
        .party_players("gone-party")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.user_id)
        .collect();
    assert_eq!(players, ["ana", "next"]);

    let lock = WriteLock::hold(t, "rooms", "GONE22").await;
    let store = Arc::clone(s);
    wait_and_abandon(tokio::spawn(async move {
        store.add_member("GONE22", "gone", 1).await
    }))
    .await;
    lock.release().await;
    assert_eq!(
        s.add_member("GONE22", "next", 2).await.unwrap(),
        AddMember::Added
    );
    let kept = s.is_member("GONE22", "gone").await.unwrap();
    assert_eq!(
        s.room("GONE22").await.unwrap().unwrap().member_count,
        1 + u32::from(kept)
    );
    assert!(s.remove_member("GONE22", "next").await.unwrap());
}

/// Many first joiners of rooms that do not exist yet, each doing what the core does for a
/// room named by a client: join, create it if missing, join again. None is told "full".
async fn joins_racing_a_rooms_creation_are_never_told_it_is_full(t: &TestStore) {
    const ROOMS: usize = 20;
    const JOINERS: usize = 50;
    for room in 0..ROOMS {
        let key = format!("crowd-{room}");
        let joins = (0..JOINERS).map(|i| {
            let store = Arc::clone(&t.store);
            let key = key.clone();
            tokio::spawn(async move {
                let user = format!("user{i}");
                let first = store.add_member(&key, &user, 1).await.unwrap();
                if first != AddMember::NotFound {
                    return first;
                }
                store
                    .create_room(&new_room(&key, JOINERS as u32))
                    .await
                    .unwrap();
                store.add_member(&key, &user, 2).await.unwrap()
            })
        });
        let outcomes: Vec<AddMember> = futures_util::future::join_all(joins)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(
            outcomes.iter().all(|o| *o == AddMember::Added),
            "room {room}: {outcomes:?}"
        );
        let stored = t.store.room(&key).await.unwrap().unwrap();
        assert_eq!(stored.member_count as usize, JOINERS);
    }
}

/// A room created by joining it holds `MAX_JOINED_ROOM_MEMBERS`: the last seat is taken and
/// the join after it is refused as full.
async fn a_room_created_by_joining_holds_its_cap_and_no_more(t: &TestStore) {
    use confab_server::core::{Core, CoreError, CoreSettings, IfMissing};
    use confab_shared::limits::MAX_JOINED_ROOM_MEMBERS;

    let core = Core::new(Arc::clone(&t.store), CoreSettings::default());
    let join = |user: &'static str| {
        let core = core.clone();
        async move {
            let (conn, _inbox) = core.connect();
            let admission = core.admit().await;
            core.sign_in(&conn, profile(user), &admission)
                .await
                .unwrap();
            let if_missing = IfMissing::Create {
                room_type: "discussion".into(),
            };
            core.join_room(&conn, "town-hall", if_missing, &admission)
                .await
                .map(|joined| joined.room)
        }
    };
    let room = join("first")
        .await
        .expect("the first join creates the room");
    assert_eq!(room.max_users, MAX_JOINED_ROOM_MEMBERS);
    assert_eq!(room.member_count, 1);
    // Fill every seat but one without ten thousand joins.
    let fill = format!(
        "UPDATE rooms SET member_count = {} WHERE id = 'town-hall'",
        MAX_JOINED_ROOM_MEMBERS - 1
    );
    execute_sql(t, &fill).await;
    let last = join("last").await.expect("the last seat is free");
    assert_eq!(last.member_count, MAX_JOINED_ROOM_MEMBERS);
    match join("one-too-many").await {
        Err(CoreError::RoomFull) => {}
        other => panic!("expected a full room, got {other:?}"),
    }
}

/// Clients that all sign in and join at once, far more than the store has connections,
/// with a store that lets a query wait for one only briefly (250 ms on SQLite; a second on
/// PostgreSQL, which the storage suite's other tests share): every join succeeds, because
/// admission lets a few run at a time and the rest wait their turn, not the store's.
async fn a_storm_of_sign_ins_and_joins_waits_its_turn_instead_of_failing(backend: Backend) {
    use confab_server::core::{Core, CoreSettings, IfMissing};

    const CLIENTS: usize = 3_000;
    const ROOMS: usize = 20;
    let options = StoreOptions {
        acquire_timeout: match backend {
            Backend::Sqlite => std::time::Duration::from_millis(250),
            Backend::Postgres => std::time::Duration::from_secs(1),
        },
        ..StoreOptions::default()
    };
    let t = TestStore::with_options(backend, options).await;
    let core = Core::new(Arc::clone(&t.store), CoreSettings::default());
    let clients = (0..CLIENTS).map(|i| {
        let core = core.clone();
        tokio::spawn(async move {
            let (conn, _inbox) = core.connect();
            let admission = core.admit().await;
            core.sign_in(&conn, profile(&format!("storm{i}")), &admission)
                .await?;
            let if_missing = IfMissing::Create {
                room_type: "discussion".into(),
            };
            let key = format!("storm-room-{}", i % ROOMS);
            core.join_room(&conn, &key, if_missing, &admission).await?;
            Ok::<_, confab_server::core::CoreError>(conn)
        })
    });
    let outcomes = futures_util::future::join_all(clients).await;
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|outcome| match outcome.as_ref().unwrap() {
            Ok(_) => None,
            Err(err) => Some(format!("{err:?}")),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} failed, the first: {}",
        failures.len(),
        failures[0]
    );
    for room in 0..ROOMS {
        let stored = t.store.room(&format!("storm-room-{room}")).await.unwrap();
        assert_eq!(stored.unwrap().member_count as usize, CLIENTS / ROOMS);
    }
    drop(outcomes);
    drop(core);
    t.finish().await;
}

#[tokio::test]
async fn a_storm_of_sign_ins_and_joins_waits_its_turn_on_sqlite() {
    a_storm_of_sign_ins_and_joins_waits_its_turn_instead_of_failing(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_storm_of_sign_ins_and_joins_waits_its_turn_on_postgres() {
    a_storm_of_sign_ins_and_joins_waits_its_turn_instead_of_failing(Backend::Postgres).await;
}

/// Runs one statement on the test's database, beside the store.
async fn execute_sql(t: &TestStore, sql: &str) {
    use sqlx::{Connection, Executor};
    match t.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            conn.execute(sql).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
            conn.execute(sql).await.unwrap();
        }
    }
}

/// Sign-ins and joins written at once reach SQLite's join writer together, which commits
/// them a batch at a time: each is still told its own outcome, and a full room takes no
/// more than its seats.
async fn joins_and_profiles_written_together_each_get_their_own_outcome(t: &TestStore) {
    use futures_util::future::join_all;
    let s = &t.store;
    s.create_room(&new_room("GRPC22", 3)).await.unwrap();
    let users: Vec<String> = (0..150).map(|i| format!("g{i}")).collect();
    let stored: Vec<Profile> = users.iter().map(|u| profile(u)).collect();
    let profiles = join_all(stored.iter().map(|p| s.upsert_profile(p, 1)));
    let seats = join_all(users.iter().map(|u| s.add_member("GRPC22", u, 2)));
    let roomless = s.add_member("NONE33", "g0", 2);
    let (profiles, seats, roomless) = tokio::join!(profiles, seats, roomless);

    assert!(profiles.iter().all(Result::is_ok), "{profiles:?}");
    for user in &users {
        assert_eq!(s.profile(user).await.unwrap(), Some(profile(user)));
    }
    let seated: Vec<&String> = users
        .iter()
        .zip(&seats)
        .filter(|(_, seat)| *seat.as_ref().unwrap() == AddMember::Added)
        .map(|(user, _)| user)
        .collect();
    assert_eq!(seated.len(), 3, "{seats:?}");
    let full = seats
        .iter()
        .filter(|seat| *seat.as_ref().unwrap() == AddMember::Full)
        .count();
    assert_eq!(full, users.len() - 3, "{seats:?}");
    assert_eq!(roomless.unwrap(), AddMember::NotFound);
    let mut members: Vec<String> = s
        .members("GRPC22")
        .await
        .unwrap()
        .into_iter()
        .map(|member| member.profile.user_id)
        .collect();
    members.sort();
    let mut expected: Vec<String> = seated.iter().map(|user| user.to_string()).collect();
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(s.room("GRPC22").await.unwrap().unwrap().member_count, 3);
    assert_eq!(
        s.add_member("GRPC22", seated[0], 3).await.unwrap(),
        AddMember::AlreadyMember
    );
}

/// A write that fails in a batch of the join writer's fails alone: the others are tried
/// again one by one and stored.
#[tokio::test]
async fn a_join_write_that_fails_fails_alone_among_those_written_together() {
    use futures_util::future::join_all;
    let t = TestStore::new(Backend::Sqlite).await;
    execute_sql(
        &t,
        "CREATE TRIGGER poison BEFORE INSERT ON profiles WHEN NEW.user_id = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
    )
    .await;
    let s = &t.store;
    s.create_room(&new_room("PSNR22", 100)).await.unwrap();
    let mut users: Vec<String> = (0..99).map(|i| format!("p{i}")).collect();
    users.insert(37, "poison".into());
    let stored: Vec<Profile> = users.iter().map(|u| profile(u)).collect();
    let profiles = join_all(stored.iter().map(|p| s.upsert_profile(p, 1)));
    let seats = join_all(users.iter().map(|u| s.add_member("PSNR22", u, 2)));
    let (profiles, seats) = tokio::join!(profiles, seats);

    for (user, stored) in users.iter().zip(&profiles) {
        match user.as_str() {
            "poison" => assert!(stored.is_err(), "the poisoned profile is refused"),
            _ => assert!(stored.is_ok(), "{user}: {stored:?}"),
        }
    }
    assert_eq!(s.profile("poison").await.unwrap(), None);
    assert_eq!(s.profile("p36").await.unwrap(), Some(profile("p36")));
    assert!(seats
        .iter()
        .all(|seat| *seat.as_ref().unwrap() == AddMember::Added));
    assert_eq!(s.room("PSNR22").await.unwrap().unwrap().member_count, 100);
    t.finish().await;
}

async fn rooms_of_lists_most_recent_first(t: &TestStore) {
    let s = &t.store;
    for key in ["AAAA22", "BBBB22", "CCCC22"] {
        s.create_room(&new_room(key, 4)).await.unwrap();
    }
    s.add_member("BBBB22", "u", 10).await.unwrap();
    s.add_member("AAAA22", "u", 20).await.unwrap();
    s.add_member("CCCC22", "someone-else", 30).await.unwrap();
    assert_eq!(s.rooms_of("u").await.unwrap(), ["AAAA22", "BBBB22"]);
    assert!(s.rooms_of("nobody").await.unwrap().is_empty());
}

async fn messages_get_gapless_sequence_numbers_under_concurrency(t: &TestStore) {
    room_for_messages(t, "SEQS22").await;
    let appends = (0..40).map(|i| {
        let store = Arc::clone(&t.store);
        tokio::spawn(async move {
            store
                .append_message(&new_message("SEQS22", &format!("m{i}")))
                .await
                .unwrap()
        })
    });
    let mut seqs: Vec<u64> = futures_util::future::join_all(appends)
        .await
        .into_iter()
        .map(|stored| stored.unwrap().unwrap().seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    assert_eq!(t.store.room("SEQS22").await.unwrap().unwrap().last_seq, 40);
    assert_eq!(
        t.store
            .append_message(&new_message("NOPE22", "x"))
            .await
            .unwrap(),
        None
    );
    // Only members' messages are stored, and a refused one takes no number.
    let stranger = NewMessage {
        sender: profile("stranger"),
        ..new_message("SEQS22", "not a member")
    };
    assert_eq!(t.store.append_message(&stranger).await.unwrap(), None);
    t.store.remove_member("SEQS22", "u1").await.unwrap();
    let after_leaving = new_message("SEQS22", "gone");
    assert_eq!(t.store.append_message(&after_leaving).await.unwrap(), None);
    assert_eq!(t.store.room("SEQS22").await.unwrap().unwrap().last_seq, 40);
}

async fn a_failed_append_takes_no_sequence_number_and_the_store_carries_on(t: &TestStore) {
    room_for_messages(t, "FAIL22").await;
    let first = new_message("FAIL22", "first");
    assert_eq!(
        t.store.append_message(&first).await.unwrap().unwrap().seq,
        1
    );
    // The same id again breaks the primary key: the whole append is undone.
    assert!(t.store.append_message(&first).await.is_err());
    assert_eq!(t.store.room("FAIL22").await.unwrap().unwrap().last_seq, 1);
    let next = t
        .store
        .append_message(&new_message("FAIL22", "next"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.seq, 2);
    let bodies: Vec<String> = t
        .store
        .recent_messages("FAIL22", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["first", "next"]);
}

/// Appends polled together reach the store's writer together, so this writes them as
/// batches: more than one batch, cut into transactions of several sizes.
async fn a_bad_message_fails_alone_among_messages_stored_together(t: &TestStore) {
    let rooms = ["BTCH22", "BTCH33"];
    for key in rooms {
        room_for_messages(t, key).await;
    }
    let taken = new_message("BTCH22", "taken");
    assert_eq!(
        t.store.append_message(&taken).await.unwrap().unwrap().seq,
        1
    );
    let count = store::MAX_APPEND_BATCH * 2 + 23;
    let mut messages: Vec<NewMessage> = (0..count)
        .map(|i| new_message(rooms[i % 2], &format!("m{i}")))
        .collect();
    let duplicate = 70;
    let roomless = 100;
    messages.insert(duplicate, taken.clone());
    messages.insert(roomless, new_message("NOPE33", "nowhere"));
    let results =
        futures_util::future::join_all(messages.iter().map(|m| t.store.append_message(m))).await;

    let mut seqs = std::collections::HashMap::<&str, Vec<u64>>::new();
    for (i, (message, result)) in messages.iter().zip(&results).enumerate() {
        match i {
            _ if i == duplicate => assert!(result.is_err(), "a taken id is refused"),
            _ if i == roomless => assert!(matches!(result, Ok(None)), "no such room"),
            _ => {
                let stored = result.as_ref().unwrap().as_ref().unwrap();
                assert_eq!(stored.body, message.body);
                seqs.entry(rooms[usize::from(message.room_key == rooms[1])])
                    .or_default()
                    .push(stored.seq);
            }
        }
    }
    // Every good message is stored once, and each room's numbers stay gapless.
    let (first, second) = (count.div_ceil(2) as u64, (count / 2) as u64);
    for (key, from, n) in [(rooms[0], 2, first), (rooms[1], 1, second)] {
        let mut got = seqs.remove(key).unwrap();
        got.sort_unstable();
        assert_eq!(got, (from..from + n).collect::<Vec<_>>(), "room {key}");
        assert_eq!(
            t.store.room(key).await.unwrap().unwrap().last_seq,
            from + n - 1
        );
        let stored = t.store.messages_after(key, 0, count + 1).await.unwrap();
        assert_eq!(stored.len() as u64, from - 1 + n);
    }
}

/// Appends beyond the writer's queue wait for room in it; none is refused or lost.
async fn appends_beyond_the_queue_wait_their_turn(t: &TestStore) {
    room_for_messages(t, "FULL22").await;
    let count = store::APPEND_QUEUE_CAPACITY + store::MAX_APPEND_BATCH + 1;
    let messages: Vec<NewMessage> = (0..count)
        .map(|i| new_message("FULL22", &format!("m{i}")))
        .collect();
    let results =
        futures_util::future::join_all(messages.iter().map(|m| t.store.append_message(m))).await;
    let mut seqs: Vec<u64> = results
        .into_iter()
        .map(|stored| stored.unwrap().unwrap().seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=count as u64).collect::<Vec<_>>());
    assert_eq!(
        t.store.room("FULL22").await.unwrap().unwrap().last_seq,
        count as u64
    );
}

async fn history_reads_are_ordered_and_bounded(t: &TestStore) {
    let s = &t.store;
    room_for_messages(t, "HIST22").await;
    room_for_messages(t, "OTHR22").await;
    for i in 1..=60 {
        s.append_message(&new_message("HIST22", &format!("m{i}")))
            .await
            .unwrap();
    }
    s.append_message(&new_message("OTHR22", "elsewhere"))
        .await
        .unwrap();

    let recent = s.recent_messages("HIST22", 50).await.unwrap();
    assert_eq!(recent.len(), 50);
    assert_eq!((recent[0].seq, recent[0].body.as_str()), (11, "m11"));
    assert_eq!((recent[49].seq, recent[49].body.as_str()), (60, "m60"));
    assert_eq!(recent[0].sender.username, "name-u1");

    let after = s.messages_after("HIST22", 55, 50).await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [56, 57, 58, 59, 60]
    );
    assert_eq!(
        s.messages_after("HIST22", 0, 3)
            .await
            .unwrap()
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(s.messages_after("HIST22", 60, 50).await.unwrap().is_empty());

    // Older history: the newest before a seq, oldest first, and nothing before the first.
    let seqs = |messages: Vec<confab_server::core::model::Message>| {
        messages.iter().map(|m| m.seq).collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(s.messages_before("HIST22", 11, 50).await.unwrap()),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(s.messages_before("HIST22", 61, 3).await.unwrap()),
        [58, 59, 60]
    );
    assert!(s.messages_before("HIST22", 1, 50).await.unwrap().is_empty());
}

/// Members are listed in the order they joined, and those who joined in the same
/// millisecond by id, however their ids and profiles sort otherwise; both member reads
/// agree, and a member with no stored profile is listed by id.
async fn members_are_listed_in_the_order_they_joined(t: &TestStore) {
    let s = &t.store;
    s.create_room(&new_room("ORDER2", 10)).await.unwrap();
    // (user, joined at): ids in reverse, two pairs joining in one millisecond.
    let joins = [
        ("m9", 10),
        ("m7", 30),
        ("m8", 20),
        ("m2", 30),
        ("m5", 20),
        ("m1", 40),
    ];
    for (user, _) in &joins {
        if *user != "m5" {
            s.upsert_profile(&profile(user), 1).await.unwrap();
        }
    }
    for (user, at) in joins {
        assert_eq!(
            s.add_member("ORDER2", user, at).await.unwrap(),
            AddMember::Added
        );
    }
    let expected = ["m9", "m5", "m8", "m2", "m7", "m1"];
    let ids = |members: &[Member]| -> Vec<String> {
        members.iter().map(|m| m.profile.user_id.clone()).collect()
    };
    let listed = s.members("ORDER2").await.unwrap();
    assert_eq!(ids(&listed), expected);
    let joined_at: Vec<i64> = listed.iter().map(|m| m.joined_at_ms).collect();
    assert_eq!(joined_at, [10, 20, 20, 30, 30, 40]);
    assert_eq!(listed[1].profile.username, "m5", "no profile: listed by id");
    assert_eq!(listed[2].profile.username, "name-m8");
    let view = s
        .room_on_join("ORDER2", "m1", 0, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.members.as_deref(), Some(&listed[..]));
}

async fn a_join_reads_the_room_as_its_member_sees_it(t: &TestStore) {
    let s = &t.store;
    for user in ["u1", "u2"] {
        s.upsert_profile(&profile(user), 1).await.unwrap();
    }
    room_for_messages(t, "JOIN22").await;
    room_for_messages(t, "QUIET2").await;
    for i in 1..=60 {
        s.append_message(&new_message("JOIN22", &format!("m{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        s.add_member("JOIN22", "u2", 5).await.unwrap(),
        AddMember::Added
    );

    let view = s.room_on_join("JOIN22", "u1", 50, true).await.unwrap();
    let view = view.expect("the room exists");
    assert_eq!((view.room.key.as_str(), view.room.last_seq), ("JOIN22", 60));
    assert!(view.is_member);
    assert_eq!(view.rooms_joined, 2, "JOIN22 and QUIET2");
    let seqs: Vec<u64> = view.history.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (11..=60).collect::<Vec<_>>(),
        "the newest, oldest first"
    );
    assert_eq!(view.history[49].body, "m60");
    let members = view.members.expect("asked for");
    let names: Vec<&str> = members
        .iter()
        .map(|m| m.profile.username.as_str())
        .collect();
    assert_eq!(names, ["name-u1", "name-u2"], "in the order they joined");

    let view = s
        .room_on_join("JOIN22", "u2", 5, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.members, None, "not asked for");
    assert_eq!(view.rooms_joined, 1);
    assert_eq!(view.history.len(), 5);

    let outsider = s
        .room_on_join("QUIET2", "u2", 50, true)
        .await
        .unwrap()
        .unwrap();
    assert!(!outsider.is_member);
    assert!(outsider.history.is_empty(), "a room with no messages");
    assert_eq!(outsider.members.unwrap().len(), 1);
    assert_eq!(
        s.room_on_join("NONE22", "u1", 50, true).await.unwrap(),
        None
    );
}

async fn everything_survives_reopening(t: &TestStore) {
    let s = &t.store;
    s.upsert_profile(&profile("u1"), 1).await.unwrap();
    s.create_room(&new_room("KEEP22", 4)).await.unwrap();
    s.add_member("KEEP22", "u1", 1).await.unwrap();
    s.append_message(&new_message("KEEP22", "still here"))
        .await
        .unwrap();

    let reopened = t.reopen().await;
    assert_eq!(reopened.profile("u1").await.unwrap(), Some(profile("u1")));
    assert!(reopened.is_member("KEEP22", "u1").await.unwrap());
    let history = reopened.recent_messages("KEEP22", 50).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body, "still here");
    assert_eq!(
        reopened
            .append_message(&new_message("KEEP22", "next"))
            .await
            .unwrap()
            .unwrap()
            .seq,
        2
    );
}

fn notification(id: &str, user_id: &str, at: i64) -> Notification {
    Notification {
        id: id.into(),
        user_id: user_id.into(),
        level: Level::Warning,
        title: "Round over".into(),
        message: "You won".into(),
        notification_type: "round_result".into(),
        actor_username: "host".into(),
        action: "finished".into(),
        recipient_role: "player".into(),
        phrase_text: "You won".into(),
        data: Some(r#"{"round":3}"#.into()),
        created_at_ms: at,
        read: false,
    }
}

async fn notifications_track_delivery_and_read_state(t: &TestStore) {
    let s = &t.store;
    for (id, user, at) in [("n1", "ana", 10), ("n2", "ana", 20), ("n3", "ben", 15)] {
        s.insert_notification(&notification(id, user, at))
            .await
            .unwrap();
    }
    let undelivered_ids = || async {
        s.undelivered_notifications("ana", i64::MAX, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        undelivered_ids().await,
        ["n1", "n2"],
        "oldest first, only Ana's"
    );
    assert!(
        s.mark_delivered("n1", 30).await.unwrap(),
        "marked by this call"
    );
    assert!(!s.mark_delivered("n1", 31).await.unwrap(), "marked already");
    // A write that failed returns it to the backlog, in its place.
    s.unmark_delivered("n1").await.unwrap();
    assert_eq!(undelivered_ids().await, ["n1", "n2"]);
    assert!(s.mark_delivered("n1", 32).await.unwrap());
    let undelivered = s
        .undelivered_notifications("ana", i64::MAX, 10)
        .await
        .unwrap();
    assert_eq!(undelivered.len(), 1);
    assert_eq!(
        undelivered[0],
        notification("n2", "ana", 20),
        "every field round-trips"
    );
    let since_n1 = s.undelivered_notifications("ana", 10, 10).await.unwrap();
    assert_eq!(
        since_n1.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["n1", "n2"],
        "one delivered already is sent again to a socket opened before it was created"
    );

    assert!(s.mark_read("ana", "n1", 40).await.unwrap());
    assert!(
        !s.mark_read("ben", "n1", 40).await.unwrap(),
        "only the owner marks it read"
    );
    assert!(!s.mark_read("ana", "nope", 40).await.unwrap());
    let listed = s.notifications_of("ana", 10).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|n| (n.id.as_str(), n.read))
            .collect::<Vec<_>>(),
        [("n2", false), ("n1", true)]
    );
    assert_eq!(s.notifications_of("ana", 1).await.unwrap().len(), 1);
}

fn party(id: &str, code: &str, max_players: u32) -> Party {
    Party {
        id: id.into(),
        code: code.into(),
        host_id: "ana".into(),
        phase: PartyPhase::Lobby,
        max_players,
        created_at_ms: 1,
    }
}

fn player(user_id: &str, joined_at_ms: i64) -> PartyPlayer {
    PartyPlayer {
        user_id: user_id.into(),
        username: user_id.to_uppercase(),
        ready: false,
        joined_at_ms,
    }
}

async fn party_sessions_keep_players_in_order_and_within_capacity(t: &TestStore) {
    let s = &t.store;
    assert!(s
        .create_party(&party("p1", "PARTY2", 3), &player("ana", 1))
        .await
        .unwrap());
    assert!(
        !s.create_party(&party("p2", "PARTY2", 3), &player("ben", 1))
            .await
            .unwrap(),
        "codes are unique"
    );
    assert_eq!(
        s.party_by_code("PARTY2").await.unwrap(),
        Some(party("p1", "PARTY2", 3))
    );
    assert_eq!(s.party("nope").await.unwrap(), None);

    assert_eq!(
        s.add_party_player("p1", &player("ben", 2)).await.unwrap(),
        AddMember::Added
    );
    assert_eq!(
        s.add_party_player("p1", &player("ben", 3)).await.unwrap(),
        AddMember::AlreadyMember
    );
    assert_eq!(
        s.add_party_player("nope", &player("ben", 3)).await.unwrap(),
        AddMember::NotFound
    );
    let racing = (0..10).map(|i| {
        let store = Arc::clone(&t.store);
        tokio::spawn(async move {
            store
                .add_party_player("p1", &player(&format!("racer{i}"), 10 + i))
                .await
                .unwrap()
        })
    });
    let added = futures_util::future::join_all(racing)
        .await
        .into_iter()
        .filter(|o| *o.as_ref().unwrap() == AddMember::Added)
        .count();
    assert_eq!(added, 1, "one seat was left");
    assert_eq!(s.party_players("p1").await.unwrap().len(), 3);

    assert!(s.set_party_ready("p1", "ben", true).await.unwrap());
    assert!(!s.set_party_ready("p1", "carl", true).await.unwrap());
    let round_two = PartyPhase::InPlay("round 2".into());
    assert!(s.set_party_state("p1", "ben", &round_two).await.unwrap());
    assert!(s.remove_party_player("p1", "ana").await.unwrap());
    assert!(!s.remove_party_player("p1", "ana").await.unwrap());

    let reopened = t.reopen().await;
    let stored = reopened.party("p1").await.unwrap().unwrap();
    assert_eq!((stored.host_id.as_str(), stored.phase), ("ben", round_two));
    let players = reopened.party_players("p1").await.unwrap();
    assert_eq!(
        players[0],
        PartyPlayer {
            ready: true,
            ..player("ben", 2)
        },
        "oldest first"
    );
    assert_eq!(players.len(), 2);
}

/// Retention deletes what is past its age, more than one batch of it, and nothing newer;
/// a room's sequence numbers go on after it.
async fn retention_deletes_only_what_is_past_its_age(t: &TestStore) {
    use confab_server::retention::{self, Policy, Swept, BATCH};
    const DAY: i64 = 24 * 60 * 60 * 1000;
    let now = 1_800_000_000_000;
    room_for_messages(t, "AGED22").await;
    let aged = |body: String, created_at_ms: i64| NewMessage {
        created_at_ms,
        ..new_message("AGED22", &body)
    };
    let old: Vec<NewMessage> = (0..BATCH + 3)
        .map(|i| aged(format!("old {i}"), now - 3 * DAY))
        .collect();
    for stored in
        futures_util::future::join_all(old.iter().map(|m| t.store.append_message(m))).await
    {
        stored.unwrap().unwrap();
    }
    for i in 0..2 {
        let recent = aged(format!("recent {i}"), now - DAY / 2);
        t.store.append_message(&recent).await.unwrap().unwrap();
    }
    let s = &t.store;
    s.insert_notification(&notification("n-old", "u1", now - 10 * DAY))
        .await
        .unwrap();
    s.insert_notification(&notification("n-new", "u1", now - DAY))
        .await
        .unwrap();

    let policy = Policy {
        message_days: Some(2),
        notification_days: Some(7),
    };
    let swept = retention::sweep(s.as_ref(), policy, now).await.unwrap();
    let old_count = (BATCH + 3) as u64;
    assert_eq!(
        swept,
        Swept {
            messages: old_count,
            notifications: 1
        }
    );
    let kept: Vec<u64> = s
        .messages_after("AGED22", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(kept, [old_count + 1, old_count + 2]);
    let notifications = s.notifications_of("u1", 10).await.unwrap();
    assert_eq!(
        notifications
            .iter()
            .map(|n| n.id.as_str())
            .collect::<Vec<_>>(),
        ["n-new"]
    );
    let next = s.append_message(&aged("after".into(), now)).await.unwrap();
    assert_eq!(next.unwrap().seq, old_count + 3, "numbering goes on");
    assert_eq!(
        retention::sweep(s.as_ref(), policy, now).await.unwrap(),
        Swept::default(),
        "nothing more to delete"
    );
}

async fn moderation_is_stored(t: &TestStore) {
    use confab_server::core::model::{AuditEntry, Ban, DeletedMessage, ModerationAction};
    let s = &t.store;
    room_for_messages(t, "MODR22").await;
    let first = s
        .append_message(&new_message("MODR22", "one"))
        .await
        .unwrap()
        .unwrap();
    let second = s
        .append_message(&new_message("MODR22", "two"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.delete_message(&first.id).await.unwrap(),
        Some(DeletedMessage {
            id: first.id.clone(),
            room_key: "MODR22".into(),
            seq: 1
        })
    );
    assert_eq!(s.delete_message(&first.id).await.unwrap(), None);
    let left: Vec<u64> = s
        .messages_after("MODR22", 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(left, [second.seq]);
    let third = s
        .append_message(&new_message("MODR22", "three"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        third.seq, 3,
        "a deleted message's number is not given again"
    );

    // Closing removes every member, once, and no seat is free afterwards.
    s.add_member("MODR22", "u2", 2).await.unwrap();
    let mut removed = s
        .close_room("MODR22", 10)
        .await
        .unwrap()
        .expect("an open room");
    removed.sort();
    assert_eq!(removed, ["u1", "u2"]);
    assert_eq!(s.close_room("MODR22", 11).await.unwrap(), None);
    assert_eq!(s.close_room("NOSUCH", 11).await.unwrap(), None);
    let room = s.room("MODR22").await.unwrap().unwrap();
    assert!(room.closed);
    assert_eq!(room.member_count, 0);
    assert!(s.members("MODR22").await.unwrap().is_empty());
    assert_eq!(
        s.add_member("MODR22", "u3", 12).await.unwrap(),
        AddMember::Full
    );
    assert!(s
        .append_message(&new_message("MODR22", "late"))
        .await
        .unwrap()
        .is_none());
    s.create_room(&new_room("OPEN22", 4)).await.unwrap();
    assert!(!s.room("OPEN22").await.unwrap().unwrap().closed);

    // Bans: one per user, updated in place, listed newest first.
    let ban = |user_id: &str, reason: &str, at: i64| Ban {
        user_id: user_id.into(),
        reason: reason.into(),
        moderator: "mo".into(),
        banned_at_ms: at,
    };
    assert!(!s.is_banned("u1").await.unwrap());
    s.ban(&ban("u1", "spam", 100)).await.unwrap();
    s.ban(&ban("u2", "abuse", 200)).await.unwrap();
    s.ban(&ban("u1", "spam again", 300)).await.unwrap();
    assert!(s.is_banned("u1").await.unwrap());
    assert_eq!(
        s.bans(10).await.unwrap(),
        [ban("u1", "spam again", 300), ban("u2", "abuse", 200)]
    );
    assert_eq!(s.bans(1).await.unwrap().len(), 1);
    assert!(s.unban("u1").await.unwrap());
    assert!(!s.unban("u1").await.unwrap());
    assert!(!s.is_banned("u1").await.unwrap());

    let entry = |id: &str, at_ms: i64, action: ModerationAction| AuditEntry {
        id: id.into(),
        at_ms,
        moderator: "mo".into(),
        action,
        target: "MODR22/u2".into(),
        reason: "why".into(),
    };
    s.record_audit(&entry("a1", 1, ModerationAction::RemoveMember))
        .await
        .unwrap();
    s.record_audit(&entry("a2", 2, ModerationAction::CloseRoom))
        .await
        .unwrap();
    assert_eq!(
        s.audit_log(10).await.unwrap(),
        [
            entry("a2", 2, ModerationAction::CloseRoom),
            entry("a1", 1, ModerationAction::RemoveMember)
        ]
    );
    assert_eq!(s.audit_log(1).await.unwrap().len(), 1);
}

async fn read_positions_only_move_forward_and_summaries_show_unread(t: &TestStore) {
    let s = &t.store;
    room_for_messages(t, "READ22").await;
    s.create_room(&NewRoom {
        name: "Quiet".into(),
        ..new_room("QUIET2", 4)
    })
    .await
    .unwrap();
    s.add_member("QUIET2", "u1", 2).await.unwrap();
    for i in 1..=5 {
        s.append_message(&new_message("READ22", &format!("r{i}")))
            .await
            .unwrap()
            .unwrap();
    }
    let summaries = |list: Vec<confab_server::core::model::RoomSummary>| {
        let mut list: Vec<_> = list
            .into_iter()
            .map(|r| {
                let last = r.last_message.as_ref().map(|m| (m.seq, m.body.clone()));
                (r.room.key.clone(), r.room.name.clone(), r.unread(), last)
            })
            .collect();
        list.sort();
        list
    };
    assert_eq!(
        summaries(s.room_summaries("u1").await.unwrap()),
        [
            ("QUIET2".to_owned(), "Quiet".to_owned(), 0, None),
            (
                "READ22".to_owned(),
                String::new(),
                5,
                Some((5, "r5".to_owned()))
            ),
        ]
    );
    s.set_read_position("u1", "READ22", 3, 10).await.unwrap();
    s.set_read_position("u1", "READ22", 2, 11).await.unwrap();
    let read = s.room_summaries("u1").await.unwrap();
    let room = read.iter().find(|r| r.room.key == "READ22").unwrap();
    assert_eq!((room.read_seq, room.unread()), (3, 2), "never moves back");
    // Another member's position is their own.
    s.add_member("READ22", "u2", 3).await.unwrap();
    let theirs = s.room_summaries("u2").await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].unread(), 5);
    assert!(s.room_summaries("nobody").await.unwrap().is_empty());
}

/// Options for SQLite with reading connections beside the writer (by default reads run on
/// the writer's connection).
fn with_sqlite_readers() -> StoreOptions {
    StoreOptions {
        sqlite_readers: 2,
        ..StoreOptions::default()
    }
}

macro_rules! storage_suite {
    ($($case:ident),* $(,)?) => {
        storage_suite!(@on sqlite, Sqlite, confab_server::store::StoreOptions::default(); $($case),*);
        storage_suite!(@on sqlite_readers, Sqlite, crate::storage::with_sqlite_readers(); $($case),*);
        storage_suite!(@on postgres, Postgres, confab_server::store::StoreOptions::default(); $($case),*);
    };
    (@on $module:ident, $backend:ident, $options:expr; $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $case() {
                    let t = super::TestStore::with_options(super::Backend::$backend, $options).await;
                    super::$case(&t).await;
                    t.finish().await;
                }
            )*
        }
    };
}

storage_suite!(
    moderation_is_stored,
    read_positions_only_move_forward_and_summaries_show_unread,
    profiles_are_upserted,
    a_sign_in_reads_the_ban_the_profile_and_the_rooms_at_once,
    a_failed_append_takes_no_sequence_number_and_the_store_carries_on,
    a_bad_message_fails_alone_among_messages_stored_together,
    appends_beyond_the_queue_wait_their_turn,
    rooms_are_created_once_and_read_back,
    membership_respects_capacity,
    racing_joins_never_overfill_a_room,
    one_users_racing_joins_take_one_seat,
    a_join_abandoned_part_way_leaves_no_transaction_open,
    joins_racing_a_rooms_creation_are_never_told_it_is_full,
    a_room_created_by_joining_holds_its_cap_and_no_more,
    rooms_of_lists_most_recent_first,
    joins_and_profiles_written_together_each_get_their_own_outcome,
    messages_get_gapless_sequence_numbers_under_concurrency,
    history_reads_are_ordered_and_bounded,
    a_join_reads_the_room_as_its_member_sees_it,
    members_are_listed_in_the_order_they_joined,
    everything_survives_reopening,
    notifications_track_delivery_and_read_state,
    party_sessions_keep_players_in_order_and_within_capacity,
    retention_deletes_only_what_is_past_its_age,
);

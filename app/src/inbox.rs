//! Notifications: a bell with the unread count and an inbox of the stored notifications,
//! each marked read when the inbox is opened. The list comes from the REST API on sign-in;
//! new ones arrive on the `/qf/notifications` socket and are added in front.

use confab_shared::{api::NotificationView, channels::ChannelNotification};
use leptos::prelude::*;

use crate::{account::Account, api};

#[derive(Clone, Copy)]
pub struct Inbox {
    pub items: RwSignal<Vec<NotificationView>>,
    pub open: RwSignal<bool>,
    token: StoredValue<String>,
}

impl Inbox {
    pub fn new() -> Self {
        Self {
            items: RwSignal::new(Vec::new()),
            open: RwSignal::new(false),
            token: StoredValue::new(String::new()),
        }
    }

    /// Loads the stored notifications of the person who just signed in.
    pub fn load(self, account: &Account) {
        self.token.set_value(account.token.clone());
        self.refresh();
    }

    /// Reads the stored list again: it has every field (a title, a message), which the
    /// socket's shape of a notification does not.
    fn refresh(self) {
        let token = self.token.get_value();
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::notifications(&token).await {
                self.items.set(list.notifications);
            }
        });
    }

    pub fn clear(self) {
        self.items.set(Vec::new());
        self.open.set(false);
    }

    /// A notification that just arrived, unread: counted at once, shown whole once the
    /// stored list is read again.
    pub fn arrived(self, n: &ChannelNotification) {
        self.refresh();
        self.items.update(|all| {
            if all.iter().any(|item| item.id == n.id) {
                return;
            }
            all.insert(
                0,
                NotificationView {
                    id: n.id.clone(),
                    level: "info".into(),
                    title: n.notification_type.clone(),
                    message: n.phrase_text.clone(),
                    notification_type: n.notification_type.clone(),
                    actor_username: n.actor_username.clone(),
                    action: n.action.clone(),
                    recipient_role: n.recipient_role.clone(),
                    phrase_text: n.phrase_text.clone(),
                    data: None,
                    timestamp: n.timestamp.clone(),
                    read: false,
                },
            );
        });
    }

    pub fn unread(self) -> usize {
        self.items
            .with(|all| all.iter().filter(|n| !n.read).count())
    }

    /// Opens or closes the inbox; opening marks what it shows read, here and on the server.
    pub fn toggle(self) {
        let opening = !self.open.get_untracked();
        self.open.set(opening);
        if !opening {
            return;
        }
        let unread: Vec<String> = self.items.with_untracked(|all| {
            all.iter()
                .filter(|n| !n.read)
                .map(|n| n.id.clone())
                .collect()
        });
        self.items
            .update(|all| all.iter_mut().for_each(|n| n.read = true));
        let token = self.token.get_value();
        leptos::task::spawn_local(async move {
            for id in unread {
                let _ = api::mark_notification_read(&token, &id).await;
            }
        });
    }
}

/// The bell, and the inbox under it while open.
#[component]
pub fn Bell(inbox: Inbox) -> impl IntoView {
    view! {
        <div class="bell">
            <button type="button" class="secondary small" data-testid="bell"
                aria-expanded=move || inbox.open.get().to_string()
                aria-label=move || format!("Notifications, {} unread", inbox.unread())
                on:click=move |_| inbox.toggle()>
                <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none"
                    stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
                    <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
                    <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
                </svg>
                {move || (inbox.unread() > 0).then(|| view! {
                    <span class="count" data-testid="bell-count">{inbox.unread()}</span>
                })}
            </button>
            <Show when=move || inbox.open.get()>
                <section class="card inbox" aria-label="Notifications" data-testid="inbox">
                    <h2>"Notifications"</h2>
                    <Show when=move || inbox.items.with(|all| !all.is_empty())
                        fallback=|| view! { <p class="status">"Nothing yet."</p> }>
                        <ul>
                            <For each=move || inbox.items.get() key=|n| n.id.clone() let:n>
                                <li>
                                    <strong>{title(&n)}</strong>
                                    {(title(&n) != n.notification_type).then(|| view! {
                                        <span class="kind">{n.notification_type.clone()}</span>
                                    })}
                                    <p>{text(&n)}</p>
                                </li>
                            </For>
                        </ul>
                    </Show>
                </section>
            </Show>
        </div>
    }
}

/// The title a notification has, or its type when it has none.
fn title(n: &NotificationView) -> String {
    [&n.title, &n.notification_type]
        .into_iter()
        .find(|text| !text.is_empty())
        .cloned()
        .unwrap_or_else(|| "Notification".into())
}

/// Its text: the message, else the phrase.
fn text(n: &NotificationView) -> String {
    if n.message.is_empty() {
        n.phrase_text.clone()
    } else {
        n.message.clone()
    }
}

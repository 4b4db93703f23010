//! A room: its mode and its members in join order.

use crate::ids::ClientId;
use crate::protocol::RoomMode;

#[derive(Clone, Debug)]
pub struct Room {
    pub mode: RoomMode,
    members: Vec<ClientId>,
}

impl Room {
    pub fn new(mode: RoomMode) -> Self {
        Room {
            mode,
            members: Vec::new(),
        }
    }

    pub fn members(&self) -> &[ClientId] {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, id: &ClientId) -> bool {
        self.members.contains(id)
    }

    pub fn add(&mut self, id: ClientId) {
        if !self.contains(&id) {
            self.members.push(id);
        }
    }

    pub fn remove(&mut self, id: &ClientId) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m != id);
        before != self.members.len()
    }

    /// Members other than `id`.
    pub fn others<'a>(&'a self, id: &'a ClientId) -> impl Iterator<Item = &'a ClientId> + 'a {
        self.members.iter().filter(move |m| *m != id)
    }
}

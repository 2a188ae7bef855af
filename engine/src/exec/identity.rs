//! Who is acting, from what the system says rather than what the caller claims.
//!
//! Over the control socket the peer's uid comes from the kernel (SO_PEERCRED); `--as NAME`
//! is only a claim. A user acts as its own name; as another name only when the owner of the
//! store lets it (`phoenix serve`'s `socket_users`), and root as anyone — root can read and
//! write the store anyway, so refusing it would protect nothing, and the record says that
//! the name was asserted by uid 0.

/// A local user, as the kernel knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    /// The user name of `uid`, or `uid N` when it has none.
    pub name: String,
}

impl Peer {
    /// The user `uid`, named from the user database.
    pub fn of(uid: u32) -> Peer {
        let name =
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().map_or_else(|| format!("uid {uid}"), |u| u.name);
        Peer { uid, name }
    }

    /// This process's user.
    pub fn me() -> Peer {
        Peer::of(nix::unistd::getuid().as_raw())
    }

    /// How a decision came, for the record: `socket, uid 1000 (bob)`.
    pub fn via(&self, channel: &str) -> String {
        format!("{channel}, uid {} ({})", self.uid, self.name)
    }

    /// The name this peer acts as: its own when it claims none (or its own), a claimed one
    /// when it is root or `allowed` lists it; otherwise a refusal that says how to allow it.
    pub fn acts_as(&self, claimed: Option<&str>, allowed: &[String]) -> Result<String, String> {
        match claimed.map(str::trim).filter(|c| !c.is_empty()) {
            None => Ok(self.name.clone()),
            Some(c) if c == self.name || self.uid == 0 || allowed.iter().any(|a| a == c) => Ok(c.to_string()),
            Some(c) => Err(format!(
                "uid {} ({}) may not act as `{c}`: a user acts as its own name. Run the command as `{c}`, or leave out `--as`; \
                 to let `{}` act for others, list the names under `socket_users: {{ {}: [{c}] }}` in phoenix serve's serve.yaml",
                self.uid, self.name, self.name, self.name
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_acts_as_itself_root_as_anyone_others_as_mapped() {
        let bob = Peer { uid: 1000, name: "bob".into() };
        assert_eq!(bob.acts_as(None, &[]), Ok("bob".into()));
        assert_eq!(bob.acts_as(Some("bob"), &[]), Ok("bob".into()));
        assert_eq!(bob.acts_as(Some(" "), &[]), Ok("bob".into()));
        assert!(bob.acts_as(Some("alice"), &[]).unwrap_err().contains("uid 1000 (bob) may not act as `alice`"));
        assert_eq!(bob.acts_as(Some("alice"), &["alice".into()]), Ok("alice".into()));
        assert!(bob.acts_as(Some("carol"), &["alice".into()]).is_err());
        let root = Peer { uid: 0, name: "root".into() };
        assert_eq!(root.acts_as(Some("alice"), &[]), Ok("alice".into()));
        assert_eq!(root.via("socket"), "socket, uid 0 (root)");
        assert_eq!(Peer::of(0).name, "root");
    }
}

//! What a decision turns into: disassociations, user registrations, install and removal commands.

use super::*;

impl Run<'_> {
    /// A disassociation, or a "kept" note when the asset cannot be released.
    pub(super) fn release(
        &mut self,
        adam: &AdamId,
        href: HRef,
        s: usize,
        reason: ChangeReason,
        policy: Option<u32>,
    ) {
        let slot = &self.snap.slots[s];
        let li = slot.loc;
        if !slot.revocable {
            let loc = self.snap.locs[li].id.clone();
            let holder = self.holder(href);
            self.block(
                adam,
                holder,
                policy,
                BlockReason::NotRevocable { location: loc },
            );
            return;
        }
        if !self.snap.locs[li].writable {
            return;
        }
        if let HRef::User(u) = href {
            let loc = &self.snap.locs[li];
            let id = &self.dir.users()[u as usize].id;
            if loc.users.contains_key(id) && !self.view.is_own_user(&loc.id, id) {
                let location = loc.id.clone();
                let holder = self.holder(href);
                self.block(adam, holder, policy, BlockReason::ForeignUser { location });
                return;
            }
        }
        let holder = self.hcode(href);
        self.out
            .disassociate
            .push((li, Item::new(s as u32, holder, reason, policy)));
    }

    pub(super) fn register(&mut self, li: usize, u: u32, adam: &AdamId, pi: u32) {
        let user = &self.dir.users()[u as usize];
        if self.loc_acc[li].create.contains_key(&user.id) {
            return;
        }
        self.loc_acc[li].create.insert(
            user.id.clone(),
            UserRegistration {
                client_user_id: user.id.clone(),
                email: user.email.clone(),
                managed_apple_id: user.managed_apple_id.clone(),
            },
        );
        if user.managed_apple_id.is_none() {
            let (client_user_id, email) = (user.id.clone(), user.email.clone());
            let mut devices = Vec::new();
            let mut channels = Vec::new();
            let user_devices = self.idx.people.user_devs[u as usize].clone();
            for d in user_devices {
                let dev = &self.dir.devices()[d as usize];
                let kind = CommandKind::InviteToProgram;
                match command_channel(kind, dev.platform, dev.enrollment, &dev.os_version, true) {
                    Ok(channel) => {
                        devices.push(dev.serial_number.clone());
                        channels.push(channel);
                    }
                    Err(refusal) => {
                        let reason = BlockReason::CommandNotAllowed {
                            device: dev.serial_number.clone(),
                            command: kind,
                            platform: dev.platform,
                            enrollment: dev.enrollment,
                            refusal,
                        };
                        self.blocked.push(Blocked {
                            adam_id: adam.clone(),
                            holder: Holder::User(client_user_id.clone()),
                            policy: Some(self.policies[pi as usize].id.clone()),
                            reason,
                        });
                    }
                }
            }
            self.invitations.insert(
                (li, client_user_id.clone()),
                Invitation {
                    client_user_id,
                    email,
                    devices,
                    channels,
                    invite_code: None,
                },
            );
        }
    }

    pub(super) fn install(
        &mut self,
        adam: &AdamId,
        book: bool,
        d: u32,
        pi: u32,
        after: Precondition,
    ) {
        let dev = &self.dir.devices()[d as usize];
        let p = self.policies[pi as usize];
        let kind = if book {
            CommandKind::InstallMedia
        } else {
            CommandKind::InstallApplication
        };
        let user_licensed = matches!(
            &after,
            Precondition::Associated {
                holder: Holder::User(_),
                ..
            }
        ) || p.licence == LicenceType::User;
        let channel = match command_channel(
            kind,
            dev.platform,
            dev.enrollment,
            &dev.os_version,
            user_licensed,
        ) {
            Ok(channel) => channel,
            Err(refusal) => {
                let serial = dev.serial_number.clone();
                let (platform, enrollment) = (dev.platform, dev.enrollment);
                self.block(
                    adam,
                    Holder::Device(serial.clone()),
                    Some(pi),
                    BlockReason::CommandNotAllowed {
                        device: serial,
                        command: kind,
                        platform,
                        enrollment,
                        refusal,
                    },
                );
                return;
            }
        };
        let command = if book {
            MdmCommand::InstallMedia {
                adam_id: adam.clone(),
            }
        } else {
            MdmCommand::InstallApplication(InstallApplication::for_device(
                adam.clone(),
                &p.settings,
                dev,
            ))
        };
        self.push_command(
            d,
            DeviceCommand {
                device: dev.serial_number.clone(),
                command,
                channel,
                after,
                policy: Some(p.id.clone()),
            },
        );
    }

    /// Commands are sorted by device (serial), then app (adam id), then request type.
    pub(super) fn push_command(&mut self, d: u32, c: DeviceCommand) {
        let kind = match c.command.request_type() {
            "InstallApplication" => 0,
            "InstallMedia" => 1,
            "InviteToProgram" => 2,
            "RemoveApplication" => 3,
            _ => 4,
        };
        self.out.commands.push(c);
        self.out
            .command_keys
            .push((self.idx.people.dev_rank[d as usize], kind));
    }

    /// Install commands for a holder that already holds the app: only on devices whose
    /// inventory is known and lacks the app, or that asked for it (self-service).
    pub(super) fn installs_for_existing(
        &mut self,
        adam: &AdamId,
        book: bool,
        dm: &Demand,
        slot: usize,
        req_seq: &FastMap<u32, usize>,
    ) {
        if let HRef::User(u) = dm.holder {
            let li = self.snap.slots[slot].loc;
            let status = self.snap.locs[li].users.get(self.user_id(u)).copied();
            if status != Some(VppUserStatus::Associated) {
                let loc = self.snap.locs[li].id.clone();
                let holder = self.holder(dm.holder);
                self.block(
                    adam,
                    holder,
                    Some(dm.policy),
                    BlockReason::AwaitingInvitation { location: loc },
                );
                return;
            }
        }
        for &d in &dm.devices {
            let dev = &self.dir.devices()[d as usize];
            let need = match dev.has_installed(adam) {
                Some(installed) => !installed,
                None => req_seq.contains_key(&d),
            };
            if need {
                self.install(adam, book, d, dm.policy, Precondition::None);
            }
        }
    }
}

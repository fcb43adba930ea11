//! Planning one app (adam id) across every location that holds it: the winners per holder, kept and new licences, scarcity and the waitlist, uninstalls and releases.

use super::*;

impl Run<'_> {
    /// Plans one app (adam id) across every location that holds it.
    pub(super) fn app(&mut self, adam: &AdamId, holdings: Option<&[Holdings]>) {
        self.stamp += 1;
        let st = self.stamp;
        let slots: Vec<usize> = self.snap.catalog.get(adam).cloned().unwrap_or_default();
        let pols: Vec<u32> = self.by_adam.get(adam).cloned().unwrap_or_default();
        let book = slots.iter().any(|&s| self.snap.slots[s].book);
        let unknown_type = slots.iter().find_map(|&s| self.snap.slots[s].unknown_type);
        let install_kind = if book {
            CommandKind::InstallMedia
        } else {
            CommandKind::InstallApplication
        };
        let platforms: BTreeSet<Platform> = slots
            .iter()
            .flat_map(|&s| self.snap.slots[s].platforms.iter().copied())
            .collect();
        let bundle_id = slots
            .iter()
            .find_map(|&s| self.snap.slots[s].bundle_id.clone());

        // 1. Reach and precedence per device.
        let mut touched: Vec<u32> = Vec::new();
        for &pi in &pols {
            let p = self.policies[pi as usize];
            let rank = (
                p.intent.precedence(),
                p.licence.precedence(),
                -i64::from(p.priority),
                pi,
            );
            let uninstall = p.intent == Intent::Uninstall;
            let licence = p.licence;
            self.reach(
                pi,
                |s, d, u| {
                    let di = d as usize;
                    if !uninstall {
                        if licence == LicenceType::Device {
                            s.dev_scope[di] = st;
                        }
                    } else if let Some(u) = s.idx.people.dev_user[di] {
                        s.uninstall_users.push(u);
                    }
                    let w = Winner {
                        rank,
                        policy: pi,
                        user: u,
                    };
                    if s.dev_stamp[di] != st {
                        s.dev_stamp[di] = st;
                        s.dev_win[di] = w;
                        touched.push(d);
                    } else if rank < s.dev_win[di].rank {
                        s.dev_win[di] = w;
                    }
                },
                |s, u| {
                    if uninstall {
                        s.uninstall_users.push(u);
                    } else if licence == LicenceType::User {
                        s.user_scope[u as usize] = st;
                    }
                },
            );
        }
        touched.sort_by_key(|&d| self.idx.people.dev_rank[d as usize]);

        // 2. Requests for this app.
        let mut req_seq: FastMap<u32, usize> = FastMap::default();
        if let Some(list) = self.requests.get(adam) {
            for &(d, seq) in list {
                req_seq.insert(d, seq);
            }
        }
        let mut req_devices: Vec<(u32, usize)> = req_seq.iter().map(|(&d, &s)| (d, s)).collect();
        req_devices.sort_by_key(|&(d, _)| self.idx.people.dev_rank[d as usize]);
        for (d, _) in req_devices {
            let offered = self.dev_stamp[d as usize] == st
                && self.policies[self.dev_win[d as usize].policy as usize].intent
                    != Intent::Uninstall;
            if !offered {
                let serial = self.serial(d).clone();
                self.block(
                    adam,
                    Holder::Device(serial.clone()),
                    None,
                    BlockReason::NotOffered { device: serial },
                );
            }
        }

        // 3. Wants per winner.
        let mut demands: Vec<Demand> = Vec::new();
        // Per user, flat (sorted by user below): one allocation for every user.
        let mut user_wants: Vec<(u32, UserDeviceWant)> = Vec::new();
        let mut uninstall_devs: Vec<(u32, u32)> = Vec::new();
        let mut user_active_dev: FastMap<u32, bool> = FastMap::default();
        for &d in &touched {
            let w = self.dev_win[d as usize];
            let p = self.policies[w.policy as usize];
            let dev = &self.dir.devices()[d as usize];
            if p.intent == Intent::Uninstall {
                uninstall_devs.push((d, w.policy));
                continue;
            }
            if let Some(u) = self.idx.people.dev_user[d as usize] {
                if p.licence == LicenceType::User {
                    user_active_dev.insert(u, true);
                }
            }
            let (class, seq) = match p.intent {
                Intent::Required => (CLASS_REQUIRED, 0),
                _ => match req_seq.get(&d) {
                    Some(&s) => (CLASS_AVAILABLE, s),
                    None => continue,
                },
            };
            if !platforms.is_empty() && !platforms.contains(&dev.platform) {
                self.block(
                    adam,
                    Holder::Device(dev.serial_number.clone()),
                    Some(w.policy),
                    BlockReason::PlatformNotSupported {
                        device: dev.serial_number.clone(),
                        platform: dev.platform,
                    },
                );
                continue;
            }
            if let Some(t) = unknown_type {
                self.block(
                    adam,
                    Holder::Device(dev.serial_number.clone()),
                    Some(w.policy),
                    BlockReason::UnknownProductType {
                        product_type: t.as_str().to_owned(),
                    },
                );
                continue;
            }
            // The install Apple's schema forbids on this device: no licence is taken for it.
            if let Err(refusal) = command_channel(
                install_kind,
                dev.platform,
                dev.enrollment,
                &dev.os_version,
                p.licence == LicenceType::User,
            ) {
                self.block(
                    adam,
                    Holder::Device(dev.serial_number.clone()),
                    Some(w.policy),
                    BlockReason::CommandNotAllowed {
                        device: dev.serial_number.clone(),
                        command: install_kind,
                        platform: dev.platform,
                        enrollment: dev.enrollment,
                        refusal,
                    },
                );
                continue;
            }
            match p.licence {
                LicenceType::Device => demands.push(Demand {
                    holder: HRef::Dev(d),
                    class,
                    priority: p.priority,
                    seq,
                    policy: w.policy,
                    devices: vec![d],
                }),
                LicenceType::User => {
                    let Some(u) = w.user else {
                        self.block(
                            adam,
                            Holder::Device(dev.serial_number.clone()),
                            Some(w.policy),
                            BlockReason::NoUserAffinity {
                                device: dev.serial_number.clone(),
                            },
                        );
                        continue;
                    };
                    if !dev.app_store_allowed {
                        self.block(
                            adam,
                            Holder::Device(dev.serial_number.clone()),
                            Some(w.policy),
                            BlockReason::AppStoreDisabled {
                                device: dev.serial_number.clone(),
                            },
                        );
                        continue;
                    }
                    user_wants.push((
                        u,
                        UserDeviceWant {
                            device: d,
                            class,
                            priority: p.priority,
                            policy: w.policy,
                            seq,
                        },
                    ));
                }
            }
        }
        let cap = self.planner.max_devices_per_user_licence;
        // By user, then device rank (a device wants once: the keys are unique).
        user_wants.sort_unstable_by_key(|(u, w)| (*u, self.idx.people.dev_rank[w.device as usize]));
        for group in user_wants.chunk_by(|a, b| a.0 == b.0) {
            let u = group[0].0;
            let mut wants: Vec<UserDeviceWant> = group.iter().map(|(_, w)| *w).collect();
            if wants.len() > cap {
                for w in wants.split_off(cap) {
                    let serial = self.serial(w.device).clone();
                    self.block(
                        adam,
                        Holder::User(self.user_id(u).clone()),
                        Some(w.policy),
                        BlockReason::TooManyDevices {
                            device: serial,
                            limit: cap,
                        },
                    );
                }
            }
            let best = wants
                .iter()
                .min_by_key(|w| (w.class, -i64::from(w.priority), w.seq, w.policy))
                .copied();
            if let Some(best) = best {
                demands.push(Demand {
                    holder: HRef::User(u),
                    class: best.class,
                    priority: best.priority,
                    seq: best.seq,
                    policy: best.policy,
                    devices: wants.iter().map(|w| w.device).collect(),
                });
            }
        }
        demands.sort_by_key(|dm| {
            (
                dm.class,
                -i64::from(dm.priority),
                dm.seq,
                self.holder_rank(dm.holder),
            )
        });

        // 4. Existing holdings.
        struct Held {
            slot: usize,
            holder: Holder,
            href: Option<HRef>,
            status: HoldingStatus,
            handled: bool,
        }
        let mut held: Vec<Held> = Vec::new();
        let mut holder_of: Vec<(HRef, usize)> = Vec::new();
        for &s in &slots {
            let slot = &self.snap.slots[s];
            let hs: std::borrow::Cow<'_, [(Holder, HoldingStatus)]> = match holdings {
                Some(all) => std::borrow::Cow::Borrowed(&all[s]),
                None => {
                    let mut v = self.view.holdings(&self.snap.locs[slot.loc].id, &slot.key);
                    v.sort();
                    std::borrow::Cow::Owned(v)
                }
            };
            for (holder, status) in hs.iter() {
                let (holder, status) = (holder.clone(), *status);
                let href = match &holder {
                    Holder::Device(sn) => self
                        .dir
                        .device_pos(sn)
                        .filter(|&d| !self.dir.devices()[d].retired)
                        .map(|d| HRef::Dev(d as u32)),
                    Holder::User(id) => self
                        .dir
                        .user_pos(id)
                        .filter(|&u| !self.dir.users()[u].retired)
                        .map(|u| HRef::User(u as u32)),
                    _ => None,
                };
                if let Some(h) = href {
                    holder_of.push((h, held.len()));
                }
                held.push(Held {
                    slot: s,
                    holder,
                    href,
                    status,
                    handled: false,
                });
            }
        }

        let by_holder = ByHolder::new(holder_of);

        // 5. Serve demands.
        let mut free: FastMap<usize, u64> = slots
            .iter()
            .map(|&s| (s, self.snap.slots[s].free))
            .collect();
        let mut wait_pos: BTreeMap<Option<usize>, usize> = BTreeMap::new();
        for dm in demands {
            let p = self.policies[dm.policy as usize];
            if let Some(existing) = by_holder.get(&dm.holder) {
                let pin = p
                    .location
                    .as_ref()
                    .and_then(|l| self.snap.loc_index.get(l).copied());
                let keep = existing
                    .iter()
                    .copied()
                    .filter(|&h| held[h].status != HoldingStatus::Releasing)
                    .min_by_key(|&h| {
                        (
                            pin.is_some_and(|l| self.snap.slots[held[h].slot].loc != l),
                            held[h].slot,
                        )
                    });
                match keep {
                    Some(h) => {
                        held[h].handled = true;
                        let slot = held[h].slot;
                        self.installs_for_existing(adam, book, &dm, slot, &req_seq);
                    }
                    None => {
                        let loc = self.snap.locs[self.snap.slots[held[existing[0]].slot].loc]
                            .id
                            .clone();
                        let holder = self.holder(dm.holder);
                        self.block(
                            adam,
                            holder,
                            Some(dm.policy),
                            BlockReason::ReleaseInFlight { location: loc },
                        );
                    }
                }
                continue;
            }
            // A new licence.
            let holder = self.holder(dm.holder);
            let device_licence = matches!(dm.holder, HRef::Dev(_));
            let writable: Vec<usize> = self.candidates[dm.policy as usize]
                .iter()
                .copied()
                .filter(|&s| {
                    (!device_licence || self.snap.slots[s].device_assignable)
                        && self.snap.locs[self.snap.slots[s].loc].writable
                })
                .collect();
            if writable.is_empty() {
                self.block(
                    adam,
                    holder,
                    Some(dm.policy),
                    BlockReason::NoWritableLocation,
                );
                continue;
            }
            let best_free = |free: &FastMap<usize, u64>, among: &mut dyn Iterator<Item = usize>| {
                among
                    .filter(|s| free[s] > 0)
                    .min_by_key(|&s| (std::cmp::Reverse(free[&s]), s))
            };
            let chosen = match dm.holder {
                HRef::Dev(_) => best_free(&free, &mut writable.iter().copied()),
                HRef::User(u) => {
                    let user = &self.dir.users()[u as usize];
                    // Another MDM's VPP user is never given a licence: its locations
                    // are not candidates.
                    let foreign = |li: usize| {
                        let loc = &self.snap.locs[li];
                        loc.users.contains_key(&user.id)
                            && !self.view.is_own_user(&loc.id, &user.id)
                    };
                    let foreign_at = writable
                        .iter()
                        .map(|&s| self.snap.slots[s].loc)
                        .find(|&li| foreign(li));
                    let writable: Vec<usize> = writable
                        .iter()
                        .copied()
                        .filter(|&s| !foreign(self.snap.slots[s].loc))
                        .collect();
                    if let (Some(li), true) = (foreign_at, writable.is_empty()) {
                        let loc = self.snap.locs[li].id.clone();
                        self.block(
                            adam,
                            holder,
                            Some(dm.policy),
                            BlockReason::ForeignUser { location: loc },
                        );
                        continue;
                    }
                    if user.email.is_none() && user.managed_apple_id.is_none() {
                        self.block(adam, holder, Some(dm.policy), BlockReason::NoAccountDetails);
                        continue;
                    }
                    let status = |s: usize| {
                        self.snap.locs[self.snap.slots[s].loc]
                            .users
                            .get(&user.id)
                            .copied()
                    };
                    let associated = best_free(
                        &free,
                        &mut writable
                            .iter()
                            .copied()
                            .filter(|&s| status(s) == Some(VppUserStatus::Associated)),
                    );
                    if associated.is_some() {
                        associated
                    } else if let Some(&s) = writable
                        .iter()
                        .find(|&&s| status(s) == Some(VppUserStatus::Registered))
                    {
                        let loc = self.snap.locs[self.snap.slots[s].loc].id.clone();
                        self.block(
                            adam,
                            holder,
                            Some(dm.policy),
                            BlockReason::AwaitingInvitation { location: loc },
                        );
                        continue;
                    } else if let Some((loc, unknown)) = writable.iter().find_map(|&s| {
                        let l = &self.snap.locs[self.snap.slots[s].loc];
                        l.unknown_status.get(&user.id).map(|st| (l.id.clone(), *st))
                    }) {
                        // Apple lists the user with a status vppkit does not know:
                        // creating it again or assigning to it would be a guess.
                        self.block(
                            adam,
                            holder,
                            Some(dm.policy),
                            BlockReason::UnknownUserStatus {
                                location: loc,
                                status: unknown.as_str().to_owned(),
                            },
                        );
                        continue;
                    } else {
                        let pick = best_free(&free, &mut writable.iter().copied());
                        if let Some(s) = pick {
                            let li = self.snap.slots[s].loc;
                            self.out.blocked.push(BlockEntry::Register {
                                li,
                                user: u,
                                policy: dm.policy,
                            });
                            if user.managed_apple_id.is_none() {
                                let loc = self.snap.locs[li].id.clone();
                                self.block(
                                    adam,
                                    holder,
                                    Some(dm.policy),
                                    BlockReason::AwaitingInvitation { location: loc },
                                );
                                continue;
                            }
                        }
                        pick
                    }
                }
            };
            match chosen {
                Some(s) => {
                    if let Some(f) = free.get_mut(&s) {
                        *f -= 1;
                    }
                    let slot = &self.snap.slots[s];
                    let li = slot.loc;
                    let code = self.hcode(dm.holder);
                    self.out.associate.push((
                        li,
                        Item::new(s as u32, code, ChangeReason::Policy, Some(dm.policy)),
                    ));
                    let after = Precondition::Associated {
                        location: self.snap.locs[li].id.clone(),
                        asset: slot.key.clone(),
                        holder,
                    };
                    for &d in &dm.devices {
                        self.install(adam, book, d, dm.policy, after.clone());
                    }
                }
                None => {
                    let pin = p
                        .location
                        .as_ref()
                        .and_then(|l| self.snap.loc_index.get(l).copied());
                    let pos = wait_pos.entry(pin).or_insert(0);
                    *pos += 1;
                    self.out.waitlisted.push(Waitlisted {
                        adam_id: adam.clone(),
                        location: pin.map(|l| self.snap.locs[l].id.clone()),
                        holder,
                        position: *pos,
                        policy: p.id.clone(),
                        intent: p.intent,
                    });
                }
            }
        }

        // 6. Uninstall. A licence is released per the rule; the removal command goes to
        // devices whose inventory lists the app, or (inventory unknown) together with the
        // release of the licence covering the device, so it is sent once.
        let rules = self.set.release;
        let can_remove = book || bundle_id.is_some();
        let release_ok = |installed: Option<bool>| {
            let by_rule = match rules.on_uninstall {
                UninstallRelease::Never => false,
                UninstallRelease::WithRemoval => true,
                UninstallRelease::AfterRemoval => installed != Some(true),
            };
            by_rule && (installed == Some(false) || can_remove)
        };
        let live = |held: &Vec<Held>, v: Option<&[usize]>| -> Vec<usize> {
            v.map(|v| {
                v.iter()
                    .copied()
                    .filter(|&h| held[h].status != HoldingStatus::Releasing && !held[h].handled)
                    .collect()
            })
            .unwrap_or_default()
        };
        let mut user_ok: BTreeMap<u32, bool> = BTreeMap::new();
        for &(d, _) in &uninstall_devs {
            if let Some(u) = self.idx.people.dev_user[d as usize] {
                let installed = self.dir.devices()[d as usize].has_installed(adam);
                *user_ok.entry(u).or_insert(true) &= release_ok(installed);
            }
        }
        for u in std::mem::take(&mut self.uninstall_users) {
            user_ok
                .entry(u)
                .or_insert(rules.on_uninstall != UninstallRelease::Never);
        }
        // Whether a release of this holding really reaches Apple in this plan: never for
        // another MDM's VPP user (`release` blocks it), so an unknown inventory does not get a
        // removal sent on every plan for a licence that is never released.
        let releasable = |held: &Vec<Held>, h: usize| {
            let slot = &self.snap.slots[held[h].slot];
            let loc = &self.snap.locs[slot.loc];
            let foreign = match &held[h].holder {
                Holder::User(id) => {
                    loc.users.contains_key(id) && !self.view.is_own_user(&loc.id, id)
                }
                _ => false,
            };
            slot.revocable && loc.writable && !foreign
        };
        // Users whose licence goes: no device still wants it, and the rule allows it.
        let mut released_users: BTreeSet<u32> = BTreeSet::new();
        let mut really_released_users: BTreeSet<u32> = BTreeSet::new();
        let mut user_holdings: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (&u, &ok) in &user_ok {
            if user_active_dev.contains_key(&u) {
                continue;
            }
            let hs = live(&held, by_holder.get(&HRef::User(u)));
            if hs.is_empty() {
                continue;
            }
            if ok {
                released_users.insert(u);
                if hs.iter().any(|&h| releasable(&held, h)) {
                    really_released_users.insert(u);
                }
            }
            user_holdings.insert(u, hs);
        }
        for &(d, pi) in &uninstall_devs {
            let dev = &self.dir.devices()[d as usize];
            let installed = dev.has_installed(adam);
            let dev_holdings = live(&held, by_holder.get(&HRef::Dev(d)));
            let user = self.idx.people.dev_user[d as usize];
            let dev_release = release_ok(installed) && !dev_holdings.is_empty();
            let dev_really = dev_release && dev_holdings.iter().any(|&h| releasable(&held, h));
            let user_really = user.is_some_and(|u| really_released_users.contains(&u));
            let covered =
                !dev_holdings.is_empty() || user.is_some_and(|u| user_holdings.contains_key(&u));
            let send_remove = match installed {
                Some(present) => present,
                // Unknown inventory: the removal goes with a release that really happens now,
                // so it is sent once.
                None => dev_really || user_really,
            };
            if installed.is_none() && covered && !send_remove {
                self.block(
                    adam,
                    Holder::Device(dev.serial_number.clone()),
                    Some(pi),
                    BlockReason::InventoryUnknown {
                        device: dev.serial_number.clone(),
                    },
                );
            }
            if send_remove {
                let command = if book {
                    Some(MdmCommand::RemoveMedia {
                        adam_id: adam.clone(),
                    })
                } else {
                    bundle_id.as_ref().map(|b| MdmCommand::RemoveApplication {
                        identifier: b.clone(),
                        adam_id: adam.clone(),
                    })
                };
                let checked = command.map(|command| {
                    command_channel(
                        command.kind(),
                        dev.platform,
                        dev.enrollment,
                        &dev.os_version,
                        book,
                    )
                    .map(|channel| (command, channel))
                });
                match checked {
                    Some(Ok((command, channel))) => self.push_command(
                        d,
                        DeviceCommand {
                            device: dev.serial_number.clone(),
                            command,
                            channel,
                            after: Precondition::None,
                            policy: Some(self.policies[pi as usize].id.clone()),
                        },
                    ),
                    Some(Err(refusal)) => self.block(
                        adam,
                        Holder::Device(dev.serial_number.clone()),
                        Some(pi),
                        BlockReason::CommandNotAllowed {
                            device: dev.serial_number.clone(),
                            command: if book {
                                CommandKind::RemoveMedia
                            } else {
                                CommandKind::RemoveApplication
                            },
                            platform: dev.platform,
                            enrollment: dev.enrollment,
                            refusal,
                        },
                    ),
                    None => self.block(
                        adam,
                        Holder::Device(dev.serial_number.clone()),
                        Some(pi),
                        BlockReason::BundleIdUnknown {
                            device: dev.serial_number.clone(),
                        },
                    ),
                }
            }
            for h in dev_holdings {
                held[h].handled = true;
                if dev_release {
                    self.release(
                        adam,
                        HRef::Dev(d),
                        held[h].slot,
                        ChangeReason::Uninstall,
                        Some(pi),
                    );
                }
            }
        }
        for (u, hs) in user_holdings {
            for h in hs {
                held[h].handled = true;
                if released_users.contains(&u) {
                    self.release(
                        adam,
                        HRef::User(u),
                        held[h].slot,
                        ChangeReason::Uninstall,
                        None,
                    );
                }
            }
        }

        // 7. Everything else held: gone holders, out of scope, in scope.
        for h in held {
            if h.handled || h.status == HoldingStatus::Releasing {
                continue;
            }
            let slot = &self.snap.slots[h.slot];
            match h.href {
                None => {
                    // Gone: collected per holder; `gone_holders` decides once every app is
                    // seen (a revoke takes all revocable assets of the holder at once).
                    if !slot.revocable {
                        continue;
                    }
                    let li = slot.loc;
                    let loc = &self.snap.locs[li];
                    if !loc.writable {
                        continue;
                    }
                    let release = match &h.holder {
                        Holder::Device(_) => rules.on_device_removed == GoneRelease::Release,
                        Holder::User(id) => {
                            rules.on_user_retired == GoneRelease::Release
                                && self.view.is_own_user(&loc.id, id)
                        }
                        _ => false,
                    };
                    if !release {
                        continue;
                    }
                    let adopted = h.status == HoldingStatus::Adopted;
                    self.out.gone.push((li, h.holder, h.slot, adopted));
                }
                Some(r) => {
                    let in_scope = match r {
                        HRef::Dev(d) => self.dev_scope[d as usize] == st,
                        HRef::User(u) => self.user_scope[u as usize] == st,
                    };
                    if in_scope || !slot.revocable {
                        continue;
                    }
                    match rules.on_out_of_scope {
                        ScopeRelease::Keep => {}
                        ScopeRelease::Release => {
                            self.release(adam, r, h.slot, ChangeReason::OutOfScope, None)
                        }
                        ScopeRelease::ReleaseAfterDays(days) => {
                            let key = LocationHoldingKey::new(
                                self.snap.locs[slot.loc].id.clone(),
                                slot.key.clone(),
                                h.holder.clone(),
                            );
                            let since = self
                                .ctx
                                .out_of_scope_since
                                .get(&key)
                                .copied()
                                .unwrap_or(self.ctx.now);
                            let release_at = since + Duration::days(i64::from(days));
                            self.out.uses_now = true;
                            if self.ctx.now >= release_at {
                                self.release(adam, r, h.slot, ChangeReason::GraceExpired, None);
                            } else {
                                self.out.pending.push(PendingRelease {
                                    location: key.location,
                                    asset: key.asset,
                                    holder: key.holder,
                                    out_of_scope_since: since,
                                    release_at,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The holdings of an app by holder (indices into its holdings, ascending), without a
/// vector per holder.
struct ByHolder {
    /// Each holder's range in `order`.
    ranges: FastMap<HRef, (u32, u32)>,
    order: Vec<usize>,
}

impl ByHolder {
    fn new(mut pairs: Vec<(HRef, usize)>) -> Self {
        pairs.sort_unstable();
        let mut ranges = FastMap::with_capacity_and_hasher(pairs.len(), Default::default());
        let mut start = 0;
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            let end = start + group.len();
            ranges.insert(group[0].0, (start as u32, end as u32));
            start = end;
        }
        Self {
            ranges,
            order: pairs.into_iter().map(|(_, i)| i).collect(),
        }
    }

    fn get(&self, holder: &HRef) -> Option<&[usize]> {
        self.ranges
            .get(holder)
            .map(|&(a, b)| &self.order[a as usize..b as usize])
    }
}

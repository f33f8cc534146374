//! The asset registry: code, scale (decimal places of the minor unit), whether it is
//! enabled, and the default daily withdrawal limit.

use serde::{Deserialize, Serialize};
use tape_schemas::AssetCode;

pub use tape_schemas::limits::ASSET_SCALE_MAX;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Asset {
    pub code: AssetCode,
    pub scale: u8,
    pub enabled: bool,
    pub daily_withdrawal_limit_minor: Option<u64>,
}

#[derive(Clone, Default, Debug)]
pub struct Assets {
    list: Vec<Asset>,
    index: rustc_hash::FxHashMap<AssetCode, u16>,
}

impl Assets {
    pub fn get(&self, i: u16) -> &Asset {
        &self.list[i as usize]
    }

    pub fn set_enabled(&mut self, i: u16, enabled: bool) {
        self.list[i as usize].enabled = enabled;
    }

    pub fn contains(&self, i: u16) -> bool {
        usize::from(i) < self.list.len()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Every asset, by index.
    pub fn iter(&self) -> std::slice::Iter<'_, Asset> {
        self.list.iter()
    }

    /// The list the snapshot keeps.
    pub fn list(&self) -> &[Asset] {
        &self.list
    }

    pub fn find(&self, code: &AssetCode) -> Option<u16> {
        self.index.get(code).copied()
    }

    /// Adds an asset; the caller keeps the count within `CoreConfig::assets_max`
    /// (a `u16`, so ids always fit).
    pub fn add(&mut self, asset: Asset) -> u16 {
        let i = u16::try_from(self.list.len()).unwrap_or(u16::MAX);
        self.index.insert(asset.code, i);
        self.list.push(asset);
        i
    }

    pub fn from_list(list: Vec<Asset>) -> Self {
        let mut assets = Assets::default();
        for a in list {
            assets.add(a);
        }
        assets
    }
}

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
    pub list: Vec<Asset>,
    index: rustc_hash::FxHashMap<AssetCode, u16>,
}

impl Assets {
    pub fn get(&self, i: u16) -> &Asset {
        &self.list[i as usize]
    }

    pub fn get_mut(&mut self, i: u16) -> &mut Asset {
        &mut self.list[i as usize]
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

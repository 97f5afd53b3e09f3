"""Oxford-IIIT Pet: reading, transforms, download and the LightningDataModule."""

from unetskip.data.datamodule import OxfordPetDataModule
from unetskip.data.oxford_pet import OxfordPetDataset, class_names_for, trimap_to_mask

__all__ = ["OxfordPetDataModule", "OxfordPetDataset", "class_names_for", "trimap_to_mask"]

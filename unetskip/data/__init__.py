"""Datasets and LightningDataModules: Oxford-IIIT Pet (reading, transforms, download) and folders of your
own images and masks."""

from unetskip.data.datamodule import OxfordPetDataModule
from unetskip.data.folder import FolderDataModule
from unetskip.data.oxford_pet import OxfordPetDataset, class_names_for, trimap_to_mask

__all__ = ["FolderDataModule", "OxfordPetDataModule", "OxfordPetDataset", "class_names_for", "trimap_to_mask"]

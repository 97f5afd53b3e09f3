"""Datasets and LightningDataModules: Oxford-IIIT Pet (reading, transforms, download), any image files
(predict), and folders of your own images and masks."""

from unetskip.data.folder import FolderDataModule
from unetskip.data.image_folder import ImageFolderDataModule
from unetskip.data.oxford_pet import OxfordPetDataset, class_names_for, trimap_to_mask
from unetskip.data.oxford_pet_datamodule import OxfordPetDataModule

__all__ = [
    "FolderDataModule",
    "ImageFolderDataModule",
    "OxfordPetDataModule",
    "OxfordPetDataset",
    "class_names_for",
    "trimap_to_mask",
]

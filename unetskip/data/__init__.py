"""Oxford-IIIT Pet and any image files: reading, transforms, download and the LightningDataModules."""

from unetskip.data.datamodule import OxfordPetDataModule
from unetskip.data.image_folder import ImageFolderDataModule
from unetskip.data.oxford_pet import OxfordPetDataset, class_names_for, trimap_to_mask

__all__ = [
    "ImageFolderDataModule",
    "OxfordPetDataModule",
    "OxfordPetDataset",
    "class_names_for",
    "trimap_to_mask",
]

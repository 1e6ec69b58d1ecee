"""The data layer: datasets in five layouts, the built-in demo data, lesion-level splits."""

"""Records and answers of the published Fallom SDKs, to test this one against."""

"""The synthetic capture world: photographs, clips, trajectories, RAW rig, mini VOC."""

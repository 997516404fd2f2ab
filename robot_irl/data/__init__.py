"""Datasets: LeRobot v3.0 recording/reading, D4RL HDF5, synthetic data for tests, contact sheets.

Import the submodule you need; this package imports nothing heavy (lerobot/torch, h5py and PIL are imported inside
the functions that use them):

* :mod:`robot_irl.data.lerobot_io` — :class:`~robot_irl.data.lerobot_io.LeRobotRecorder`, ``load_dataset``,
  ``read_frames``, ``dataset_summary``/``format_summary``.
* :mod:`robot_irl.data.d4rl` — ``export_d4rl``, ``load_d4rl``, ``qlearning_dataset``, ``lerobot_to_d4rl``.
* :mod:`robot_irl.data.synthetic` — point-mass episodes and D4RL files generated on the spot.
* :mod:`robot_irl.data.contact_sheet` — grids of camera frames as PNG.
"""

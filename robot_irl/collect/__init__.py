"""Data collection: ADC (adversarial human-in-the-loop) and traditional sessions, in process or as a ROS 2 graph."""

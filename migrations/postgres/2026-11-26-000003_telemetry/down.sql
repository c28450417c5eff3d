DROP TABLE training_metric_stats;
DROP TABLE training_device_stats;
DROP TABLE training_updates;
DROP TABLE inference_rollups;
DROP TABLE inference_sessions;
DROP TABLE devices;

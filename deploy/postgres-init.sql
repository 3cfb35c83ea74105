-- One database per service: a service's tables are read and written only by that service.
CREATE DATABASE accounts;
CREATE DATABASE network;
CREATE DATABASE storage;
CREATE DATABASE instances;
CREATE DATABASE metrics;

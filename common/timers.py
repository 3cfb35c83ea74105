"""A nameko timer whose interval comes from the service configuration."""
from nameko.timer import Timer


class ConfigTimer(Timer):
    def __init__(self, config_key, default, **kwargs):
        super().__init__(interval=default, **kwargs)
        self.config_key = config_key
        self.default = default

    def setup(self):
        self.interval = float(self.container.config.get(self.config_key, self.default))
        super().setup()


config_timer = ConfigTimer.decorator

from common.migrate import run_env
from services.metrics.models import Base

run_env(Base.metadata)

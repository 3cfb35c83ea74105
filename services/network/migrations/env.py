from common.migrate import run_env
from services.network.models import Base

run_env(Base.metadata)

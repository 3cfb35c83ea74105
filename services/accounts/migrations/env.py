from common.migrate import run_env
from services.accounts.models import Base

run_env(Base.metadata)

"""images: kernel, initramfs and command line for direct kernel boot

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("kernel_path", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("initrd_path", sa.String(length=1024), nullable=True))
        batch.add_column(sa.Column("cmdline", sa.String(length=1024), nullable=True))
    # The seeded tiny image is built by `labcloud image build tiny` into images/tiny/.
    op.execute("UPDATE images SET kernel_path = 'images/tiny/vmlinux', "
               "initrd_path = 'images/tiny/initrd.img', cmdline = 'console=ttyS0 quiet' "
               "WHERE name = 'tiny'")


def downgrade():
    with op.batch_alter_table("images") as batch:
        batch.drop_column("cmdline")
        batch.drop_column("initrd_path")
        batch.drop_column("kernel_path")

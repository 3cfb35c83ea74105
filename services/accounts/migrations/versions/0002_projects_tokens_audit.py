"""projects (courses), memberships and quota limits; user statuses and full names; token
addresses and revocation; shared keys; rate limits; password links; audit log.

Every existing user gets a personal project whose id is the user's id, named after the user, with
the user as its manager and no limits: the instances service's own migration gives every existing
instance project_id := user_id and relies on exactly this.

Columns are only added to existing tables (ALTER TABLE ... ADD COLUMN, no table copies): SQLite
recreating `users` with foreign keys on would cascade-delete every token and key.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

RESOURCES = ("instances", "vcpus", "memory_mib", "volume_gib", "floating_ips")  # common.quota


def quota_columns():
    return [sa.Column(f"quota_{resource}", sa.Integer(), nullable=True) for resource in RESOURCES]


def upgrade():
    op.add_column('users', sa.Column('full_name', sa.String(length=128), nullable=True))
    op.add_column('users', sa.Column('status_reason', sa.Text(), nullable=True))
    op.execute("UPDATE users SET status = 'suspended' WHERE status = 'disabled'")

    op.add_column('tokens', sa.Column('address', sa.String(length=64), nullable=True))
    op.add_column('tokens', sa.Column('revoked_at', sa.DateTime(), nullable=True))

    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False, server_default=''),
    sa.Column('default_lease_hours', sa.Integer(), nullable=True),
    sa.Column('default_flavor_id', sa.Integer(), nullable=True),
    sa.Column('default_image_id', sa.Integer(), nullable=True),
    sa.Column('idle_policy', sa.String(length=16), nullable=False, server_default='suspend'),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    *quota_columns(),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('project_members',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    *quota_columns(),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'user_id', name='pk_project_members')
    )
    op.create_index('ix_project_members_user_id', 'project_members', ['user_id'], unique=False)

    # A batch (a table copy on SQLite) is safe here: no table refers to ssh_keys.
    with op.batch_alter_table('ssh_keys') as batch_op:
        batch_op.add_column(sa.Column('project_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_ssh_keys_project_id', 'projects', ['project_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index('ix_ssh_keys_project_id', ['project_id'], unique=False)

    op.create_table('rate_limits',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=254), nullable=False),
    sa.Column('window_started_at', sa.DateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'subject', name='pk_rate_limits')
    )
    op.create_table('password_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_password_links_user_id', 'password_links', ['user_id'], unique=False)
    op.create_table('audit_records',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=254), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=2048), nullable=False),
    sa.Column('action', sa.String(length=128), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_records_at', 'audit_records', ['at'], unique=False)
    op.create_index('ix_audit_records_user_id', 'audit_records', ['user_id'], unique=False)
    op.create_index('ix_audit_records_project_id', 'audit_records', ['project_id'], unique=False)

    give_every_user_a_personal_project()


def give_every_user_a_personal_project():
    op.execute("INSERT INTO projects (id, name, description, idle_policy, created_at) "
               "SELECT id, username, 'personal project of ' || username, 'suspend', created_at "
               "FROM users")
    op.execute("INSERT INTO project_members (project_id, user_id, role, created_at) "
               "SELECT id, id, 'manager', created_at FROM users")
    if op.get_bind().dialect.name == "postgresql":
        # The rows above took their ids by hand: the next generated id must come after them.
        op.execute("SELECT setval(pg_get_serial_sequence('projects', 'id'), "
                   "COALESCE((SELECT MAX(id) FROM projects), 0) + 1, false)")


def downgrade():
    op.drop_index('ix_audit_records_project_id', table_name='audit_records')
    op.drop_index('ix_audit_records_user_id', table_name='audit_records')
    op.drop_index('ix_audit_records_at', table_name='audit_records')
    op.drop_table('audit_records')
    op.drop_index('ix_password_links_user_id', table_name='password_links')
    op.drop_table('password_links')
    op.drop_table('rate_limits')
    with op.batch_alter_table('ssh_keys') as batch_op:  # nothing refers to ssh_keys: a copy is safe
        batch_op.drop_index('ix_ssh_keys_project_id')
        batch_op.drop_constraint('fk_ssh_keys_project_id', type_='foreignkey')
        batch_op.drop_column('project_id')
    op.drop_index('ix_project_members_user_id', table_name='project_members')
    op.drop_table('project_members')
    op.drop_table('projects')
    # Plain DROP COLUMN (SQLite >= 3.35): a table copy of `users` would cascade to its children.
    op.drop_column('tokens', 'revoked_at')
    op.drop_column('tokens', 'address')
    op.execute("UPDATE users SET status = 'disabled' WHERE status = 'suspended'")
    op.drop_column('users', 'status_reason')
    op.drop_column('users', 'full_name')
